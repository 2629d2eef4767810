using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Tests.CodeFixes;
using ChunkedAttention.Generator.Tests.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>
/// The IDE analyzes a span again whenever the caret moves, and merges what it gets by
/// <see cref="Diagnostic.Equals(Diagnostic)"/>, which compares message arguments by reference: a diagnostic whose
/// arguments are formatted afresh on each pass shows up twice, and so does its fix. Every analyzer of the package
/// must report equal diagnostics on every pass.
/// </summary>
public sealed class RepeatedPassTests
{
    private const string Source = """
        using ChunkedAttention;
        using static TorchSharp.torch;

        namespace Models
        {
            class SelfAttention
            {
                Tensor A(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);                          // SDPA001
                Tensor B(Tensor q, Tensor m) => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true); // SDPA004
                Tensor C(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);   // SDPA007
            }

            static class Ops
            {
                public static Tensor Apply(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);        // SDPA005
                public static Tensor Attend(Tensor q, Tensor m) => q.matmul(q.transpose(-2, -1)).add(m).softmax(-1).matmul(q); // SDPA008
            }

            [ChunkedAttention]
            class NotPartial { }                                                                                   // SDPA002

            [ChunkedAttention(ChunkSize = -1, Devices = AttentionDevices.None)]
            partial class BadSettings { }                                                                          // SDPA003 x2

            [ChunkedAttention]
            partial class Clash
            {
                int ChunkedScaledDotProductAttention;                                                              // SDPA006
            }

            [ChunkedAttention]
            file partial class FileLocal { }                                                                       // SDPA009
        }
        """;

    [Fact]
    public async Task Two_span_filtered_passes_over_one_CompilationWithAnalyzers_report_equal_diagnostics()
    {
        // Every rule on, SDPA005 and SDPA008 included, as a project that raises it in .editorconfig.
        var compilation = GeneratorHarness.Compile(new[] { Source });
        compilation = compilation.WithOptions(compilation.Options.WithSpecificDiagnosticOptions(
            IdeHost.Analyzers.SelectMany(a => a.SupportedDiagnostics)
                .Where(d => !d.IsEnabledByDefault)
                .ToDictionary(d => d.Id, _ => ReportDiagnostic.Warn)));
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);

        // Where the diagnostics are, from a separate analysis (so nothing below is served from its cache).
        var all = await compilation.WithAnalyzers(IdeHost.Analyzers).GetAnalyzerDiagnosticsAsync();
        Assert.Equal(
            new[] { "SDPA001", "SDPA002", "SDPA003", "SDPA004", "SDPA005", "SDPA006", "SDPA007", "SDPA008", "SDPA009" },
            all.Select(d => d.Id).Distinct().OrderBy(id => id).ToArray());

        var analysis = compilation.WithAnalyzers(IdeHost.Analyzers);
        foreach (var diagnostic in all)
        {
            var span = diagnostic.Location.SourceSpan;
            var first = await analysis.GetAnalyzerSemanticDiagnosticsAsync(model, span, CancellationToken.None);
            var second = await analysis.GetAnalyzerSemanticDiagnosticsAsync(model, span, CancellationToken.None);

            Assert.Contains(diagnostic, first);
            Assert.True(
                first.ToHashSet().SetEquals(second),
                $"{diagnostic.Id}: the second pass differs: {string.Join("; ", second.Where(d => !first.Contains(d)))}");
        }
    }
}
