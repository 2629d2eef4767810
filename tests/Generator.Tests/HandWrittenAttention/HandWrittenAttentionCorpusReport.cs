using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using ChunkedAttention.Generator.Tests.Generation;
using ChunkedAttention.Generator.Tests.Robustness;
using Microsoft.CodeAnalysis;
using Xunit;
using Xunit.Abstractions;

namespace ChunkedAttention.Generator.Tests.HandWrittenAttention;

/// <summary>
/// The corpus report: every matmul/bmm of the robustness corpus that multiplies softmax weights by
/// a value, what the analysis made of it (fixed as SDPA007/SDPA008, or declined and why), printed as
/// a table. For the hand-written corpus (Corpus/HandWritten) each such line states its expected
/// outcome in a trailing <c>// expect:</c> comment, checked here; the analyzer reports exactly the
/// accepted chains; and Fix All in solution turns every file into code that compiles with the
/// generator, warnings included, with no chain left.
/// Run: <c>dotnet test tests/Generator.Tests --filter HandWrittenAttentionCorpusReport --logger "console;verbosity=detailed"</c>.
/// </summary>
public sealed class HandWrittenAttentionCorpusReport
{
    private static readonly Regex Expectation = new(@"//\s*expect:\s*(?<outcome>SDPA007|SDPA008|declined\s+(?<reason>\w+))", RegexOptions.CultureInvariant);

    private readonly ITestOutputHelper _output;

    public HandWrittenAttentionCorpusReport(ITestOutputHelper output) => _output = output;

    /// <summary>One corpus file: products found, fixed as SDPA007 / SDPA008, and declined, by reason in words.</summary>
    private sealed record Row(string File, int Found, int InProcessor, int Outside, Dictionary<string, int> Declined);

    [Fact]
    public async Task Corpus_chains_are_fixed_or_declined_as_expected_and_the_fixed_code_compiles()
    {
        var rows = new List<Row>();
        var failures = new List<string>();
        var handWritten = 0;
        foreach (var seed in SeedSources.Corpus())
        {
            var files = seed.Files.Select(f => (f.Path, f.Text)).ToArray();
            var isHandWritten = seed.Files.Any(f => f.Path.Replace('\\', '/').Contains("/HandWritten/", StringComparison.Ordinal));
            if (!isHandWritten && !seed.Files.Any(f => f.Text.Contains("softmax", StringComparison.Ordinal)))
            {
                continue; // no softmax, no attention-shaped product: nothing to compile for
            }

            var run = await HandWrittenFixRunner.FixAllAsync(files);
            var probes = ChainProbe.Run(run.Original);
            if (probes.Count == 0 && !isHandWritten)
            {
                continue;
            }

            var reported = run.Reported.Where(d => d.Id is "SDPA007" or "SDPA008").ToList();
            var declined = probes.Where(p => p.Declined is not null)
                .GroupBy(p => p.Describe())
                .ToDictionary(g => g.Key, g => g.Count());
            rows.Add(new Row(
                seed.Name.Replace("corpus/", string.Empty, StringComparison.Ordinal),
                probes.Count,
                reported.Count(d => d.Id == "SDPA007"),
                reported.Count(d => d.Id == "SDPA008"),
                declined));

            // The analyzer reports exactly the chains the recogniser accepts in types that can receive the wrapper.
            var acceptedLines = probes.Where(p => p.IsFixed).Select(p => p.Line).OrderBy(l => l);
            var reportedLines = reported.Select(d => d.Location.GetLineSpan().StartLinePosition.Line + 1).OrderBy(l => l);
            if (!acceptedLines.SequenceEqual(reportedLines))
            {
                failures.Add($"{seed.Name}: accepted on lines [{string.Join(", ", acceptedLines)}], reported on [{string.Join(", ", reportedLines)}]");
            }

            if (isHandWritten)
            {
                handWritten++;
                failures.AddRange(CheckExpectations(seed, probes, reported));
                failures.AddRange(CheckFixedCodeCompiles(seed, run));
            }
        }

        _output.WriteLine(Format(rows));
        Assert.True(handWritten >= 7, $"only {handWritten} hand-written corpus files");
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private static IEnumerable<string> CheckExpectations(SeedCase seed, IReadOnlyList<ProbeResult> probes, List<Diagnostic> reported)
    {
        var expected = new Dictionary<(string File, int Line), string>();
        foreach (var file in seed.Files)
        {
            var lines = file.Text.Split('\n');
            for (var i = 0; i < lines.Length; i++)
            {
                var match = Expectation.Match(lines[i]);
                if (match.Success)
                {
                    expected[(Path.GetFileName(file.Path), i + 1)] = match.Groups["reason"].Success ? "declined " + match.Groups["reason"].Value : match.Groups["outcome"].Value;
                }
            }
        }

        foreach (var probe in probes)
        {
            var id = reported.FirstOrDefault(d => d.Location.GetLineSpan().StartLinePosition.Line + 1 == probe.Line
                && Path.GetFileName(d.Location.SourceTree!.FilePath) == probe.File)?.Id;
            var actual = probe.IsFixed ? id ?? "accepted but not reported" : "declined " + probe.Declined;
            if (!expected.Remove((probe.File, probe.Line), out var wanted))
            {
                yield return $"{probe.File}:{probe.Line}: {actual}{(probe.Analysis.Detail is null ? string.Empty : " (" + probe.Analysis.Detail + ")")}, but the line has no '// expect:' comment";
            }
            else if (wanted != actual)
            {
                yield return $"{probe.File}:{probe.Line}: expected {wanted}, got {actual}{(probe.Analysis.Detail is null ? string.Empty : " (" + probe.Analysis.Detail + ")")}";
            }
        }

        foreach (var left in expected)
        {
            yield return $"{left.Key.File}:{left.Key.Line}: expected {left.Value}, but no attention-shaped product is there";
        }
    }

    private static IEnumerable<string> CheckFixedCodeCompiles(SeedCase seed, FixRun run)
    {
        var before = run.Original.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        var (_, after) = HandWrittenFixRunner.CompileWithGenerator(run.Fixed.Values, "CorpusAfter");
        var introduced = after.Where(d => !before.Any(b => b.Id == d.Id)).ToList();
        if (introduced.Count > 0)
        {
            yield return $"{seed.Name}: the fixed code has new problems:{Environment.NewLine}{GeneratorHarness.Describe(introduced)}{Environment.NewLine}{string.Join(Environment.NewLine, run.Fixed.Values)}";
        }

        var errorsBefore = before.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errorsBefore.Count > 0)
        {
            yield return $"{seed.Name}: the corpus file itself does not compile:{Environment.NewLine}{GeneratorHarness.Describe(errorsBefore)}";
        }
    }

    private static string Format(List<Row> rows)
    {
        var builder = new StringBuilder();
        builder.AppendLine("Hand-written attention in the corpus (found = softmax weights times a value; fixed = reported and fixed)");
        builder.AppendLine($"{"file",-48} {"found",5} {"SDPA007",7} {"SDPA008",7} {"declined",8}");
        foreach (var row in rows.OrderBy(r => r.File, StringComparer.Ordinal))
        {
            builder.AppendLine($"{row.File,-48} {row.Found,5} {row.InProcessor,7} {row.Outside,7} {row.Declined.Values.Sum(),8}");
        }

        var total = rows.Sum(r => r.Found);
        var fixedCount = rows.Sum(r => r.InProcessor + r.Outside);
        builder.AppendLine($"{"total",-48} {total,5} {rows.Sum(r => r.InProcessor),7} {rows.Sum(r => r.Outside),7} {rows.Sum(r => r.Declined.Values.Sum()),8}");
        builder.AppendLine($"fixed {fixedCount} of {total} found; declined by reason:");
        foreach (var reason in rows.SelectMany(r => r.Declined).GroupBy(p => p.Key).OrderByDescending(g => g.Sum(p => p.Value)).ThenBy(g => g.Key, StringComparer.Ordinal))
        {
            builder.AppendLine($"  {reason.Key,-48} {reason.Sum(p => p.Value),3}");
        }

        return builder.ToString();
    }
}
