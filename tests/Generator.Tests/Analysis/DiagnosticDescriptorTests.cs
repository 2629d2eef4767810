using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>Every diagnostic users can see is documented, tracked and says what to do.</summary>
public class DiagnosticDescriptorTests
{
    public static IEnumerable<object[]> Descriptors() =>
        AllDescriptors().Select(d => new object[] { d.Id });

    [Fact]
    public void Ids_and_severities_are_the_contracts()
    {
        var expected = new Dictionary<string, (DiagnosticSeverity Severity, bool Enabled)>
        {
            ["SDPA001"] = (DiagnosticSeverity.Warning, true),
            ["SDPA002"] = (DiagnosticSeverity.Error, true),
            ["SDPA003"] = (DiagnosticSeverity.Error, true),
            ["SDPA004"] = (DiagnosticSeverity.Warning, true),
            ["SDPA005"] = (DiagnosticSeverity.Info, false),
            ["SDPA006"] = (DiagnosticSeverity.Error, true),
            ["SDPA007"] = (DiagnosticSeverity.Warning, true),
            ["SDPA008"] = (DiagnosticSeverity.Info, false),
            ["SDPA009"] = (DiagnosticSeverity.Warning, true),
        };

        var actual = AllDescriptors().ToDictionary(d => d.Id, d => (d.DefaultSeverity, d.IsEnabledByDefault));
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
    }

    [Theory]
    [MemberData(nameof(Descriptors))]
    public void Descriptor_has_title_message_category_and_an_existing_help_page(string id)
    {
        var descriptor = AllDescriptors().Single(d => d.Id == id);

        Assert.False(string.IsNullOrWhiteSpace(descriptor.Title.ToString()));
        Assert.False(string.IsNullOrWhiteSpace(descriptor.MessageFormat.ToString()));
        Assert.False(string.IsNullOrWhiteSpace(descriptor.Description.ToString()));
        Assert.Equal(DiagnosticDescriptors.Category, descriptor.Category);
        Assert.Equal(ExpectedHelpLink(id), descriptor.HelpLinkUri);

        var page = Path.Combine(RoslynTestSetup.RepositoryRoot, "docs", "diagnostics", id + ".md");
        Assert.True(File.Exists(page), $"Missing help page {page}");
        var text = File.ReadAllText(page);
        Assert.Contains(id, text, StringComparison.Ordinal);
        Assert.Contains(".editorconfig", text, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Descriptors))]
    public void Descriptor_is_tracked_in_the_unshipped_release(string id)
    {
        var descriptor = AllDescriptors().Single(d => d.Id == id);
        var file = Path.Combine(RoslynTestSetup.RepositoryRoot, "src", "Generator", "ChunkedAttention.Generator", "AnalyzerReleases.Unshipped.md");
        var row = File.ReadAllLines(file).SingleOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal));
        Assert.NotNull(row);

        var cells = row!.Split('|').Select(c => c.Trim()).ToArray();
        Assert.Equal(descriptor.Category, cells[1]);
        Assert.Equal(descriptor.IsEnabledByDefault ? descriptor.DefaultSeverity.ToString() : "Disabled", cells[2]);
    }

    [Theory]
    [MemberData(nameof(Descriptors))]
    public void Descriptor_is_reported_by_exactly_one_analyzer(string id)
    {
        var analyzers = typeof(DiagnosticDescriptors).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t) && t.GetCustomAttribute<DiagnosticAnalyzerAttribute>() is not null)
            .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!);
        Assert.Single(analyzers, a => a.SupportedDiagnostics.Any(d => d.Id == id));
    }

    /// <summary>
    /// The help link the build's repository URL calls for: <c>&lt;url&gt;/blob/main/docs/diagnostics/SDPA00N.md</c>,
    /// or none when the build knows no repository (a clone without an origin remote, and no
    /// <c>-p:ChunkedAttentionRepositoryUrl</c>). The URL is read from this test assembly's own build.
    /// </summary>
    private static string ExpectedHelpLink(string id)
    {
        var url = typeof(DiagnosticDescriptorTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "ChunkedAttentionRepositoryUrl").Value ?? string.Empty;
        return url.Length == 0 ? string.Empty : $"{url.TrimEnd('/')}/blob/main/docs/diagnostics/{id}.md";
    }

    private static IEnumerable<DiagnosticDescriptor> AllDescriptors() =>
        typeof(DiagnosticDescriptors).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
            .Select(f => (DiagnosticDescriptor)f.GetValue(null)!);
}
