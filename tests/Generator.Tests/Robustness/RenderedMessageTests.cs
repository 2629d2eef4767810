using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Xunit.Abstractions;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// The descriptors are checked in Analysis/DiagnosticDescriptorTests; here the messages users
/// actually read: every diagnostic the analyzers report over the corpus, rendered, must be fully
/// formatted, name what it is about, say what is wrong and say what to do.
/// </summary>
public sealed class RenderedMessageTests
{
    private readonly ITestOutputHelper _output;

    public RenderedMessageTests(ITestOutputHelper output) => _output = output;

    /// <summary>What each message must say: the problem (text), and the remedy (a pattern: the fix's action, or the user's).</summary>
    private static readonly Dictionary<string, (string Problem, string Remedy)> Expectations = new()
    {
        ["SDPA001"] = ("materializes the full attention matrix", "; (use chunked attention|move the call).*ChunkedScaledDotProductAttention"),
        ["SDPA002"] = ("must be partial", "; make '"),
        ["SDPA003"] = ("[ChunkedAttention] on '", @"; (set|select) "),
        ["SDPA004"] = ("rejects with an ArgumentException at run time", "; use chunked attention: ChunkedScaledDotProductAttention"),
        ["SDPA005"] = ("materializes the full attention matrix", "; (use chunked attention|move the call).*ChunkedScaledDotProductAttention"),
        ["SDPA006"] = ("already declares a member named '", "; rename or remove"),
        ["SDPA007"] = ("Hand-written attention in '", "; use chunked attention: one ChunkedScaledDotProductAttention call gives the same results"),
        ["SDPA008"] = ("Hand-written attention in '", "; use chunked attention: one ChunkedScaledDotProductAttention call gives the same results"),
    };

    [Fact]
    public async Task Every_reported_message_is_formatted_specific_and_actionable()
    {
        var reported = new List<Diagnostic>();
        foreach (var seed in SeedSources.Corpus())
        {
            var (diagnostics, failures) = await RoslynPipeline.AnalyzeAsync(seed.Files, ReferenceSet.Full, LanguageVersion.CSharp12, CancellationToken.None);
            Assert.Empty(failures);
            reported.AddRange(diagnostics);
        }

        Assert.Equal(Expectations.Keys.OrderBy(k => k), reported.Select(d => d.Id).Distinct().OrderBy(k => k));
        foreach (var diagnostic in reported)
        {
            var message = diagnostic.GetMessage(CultureInfo.InvariantCulture);
            var (problem, remedy) = Expectations[diagnostic.Id];
            var where = $"{diagnostic.Id} at {diagnostic.Location.GetLineSpan()}: \"{message}\"";

            // Fully formatted: no placeholder left, no empty name quoted.
            Assert.False(Regex.IsMatch(message, @"\{\d+\}"), $"unformatted placeholder in {where}");
            Assert.DoesNotContain("''", message, StringComparison.Ordinal);
            Assert.Contains(problem, message, StringComparison.Ordinal);
            Assert.True(Regex.IsMatch(message, remedy), $"no remedy ({remedy}) in {where}");

            // Specific: a message about a type or member names one declared in the source it points at.
            foreach (Match quoted in Regex.Matches(message, @"'([^']+)'"))
            {
                var name = quoted.Groups[1].Value;
                if (!name.Contains(' ', StringComparison.Ordinal))
                {
                    var text = diagnostic.Location.SourceTree!.GetText().ToString();
                    Assert.True(text.Contains(name, StringComparison.Ordinal), $"{where} names '{name}', which its file does not contain");
                }
            }
        }

        foreach (var group in reported.GroupBy(d => d.Id).OrderBy(g => g.Key))
        {
            _output.WriteLine($"{group.Key} x{group.Count()}: {group.First().GetMessage(CultureInfo.InvariantCulture)}");
        }
    }
}
