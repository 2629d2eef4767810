using System.Linq;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Xunit;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// The light bulb as an IDE shows it (<see cref="IdeHost"/>): on each diagnostic of the package, at the caret,
/// exactly one "Use chunked attention"; picking it leaves code whose generated wrapper the compilation sees.
/// </summary>
public sealed class IdeLightBulbTests
{
    private const string UseChunkedAttention = "Use chunked attention";

    /// <summary>
    /// One row per case: a name, the source, and the IDs of the package's diagnostics in it, in source order.
    /// Add a row for a new diagnostic whose fix is "Use chunked attention".
    /// </summary>
    public static TheoryData<string, string, string[]> Cases => new()
    {
        {
            "SDPA001 in a module",
            """
            using static TorchSharp.torch;

            namespace Models;

            public class CrossAttention : nn.Module<Tensor, Tensor>
            {
                public CrossAttention() : base(nameof(CrossAttention)) { }

                public override Tensor forward(Tensor x) => nn.functional.scaled_dot_product_attention(x, x, x);
            }
            """,
            new[] { "SDPA001" }
        },
        {
            "SDPA004 and SDPA001 in one nested type",
            """
            using static TorchSharp.torch;

            namespace Models
            {
                public class UNet
                {
                    class SelfAttention
                    {
                        Tensor A(Tensor q, Tensor m) => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true);
                        Tensor B(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
                    }
                }
            }
            """,
            new[] { "SDPA004", "SDPA001" }
        },
        {
            "SDPA005 outside attention processors",
            """
            using TorchSharp;

            static class Ops
            {
                public static torch.Tensor Apply(torch.Tensor q) => torch.nn.functional.scaled_dot_product_attention(q, q, q);
            }
            """,
            new[] { "SDPA005" }
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_diagnostic_offers_one_Use_chunked_attention_whose_wrapper_the_compilation_sees(string name, string source, string[] expectedIds)
    {
        var host = await IdeHost.OpenAsync(source);
        var diagnostics = await host.DiagnosticsAsync(host.Documents[0]);
        Assert.Equal(expectedIds, diagnostics.Select(d => d.Id).ToArray());

        foreach (var diagnostic in diagnostics)
        {
            var caret = diagnostic.Location.SourceSpan.Start;
            var atCaret = await host.DiagnosticsAtCaretAsync(host.Documents[0], caret);
            var fixes = (await Task.WhenAll(atCaret.Select(d => IdeHost.FixesAsync(host.Documents[0], d)))).SelectMany(f => f).ToList();
            Assert.True(
                fixes.Count(f => f.Title == UseChunkedAttention) == 1,
                $"{name}: {fixes.Count(f => f.Title == UseChunkedAttention)} \"{UseChunkedAttention}\" at {diagnostic} (light bulb: {string.Join(", ", fixes.Select(f => f.Title))})");
        }

        // Pick the fix on the first diagnostic, then look at what the compilation (with the generator) makes of it.
        var first = (await IdeHost.FixesAsync(host.Documents[0], diagnostics[0])).Single(f => f.Title == UseChunkedAttention);
        await host.ApplyAsync(first);

        var compilation = await host.CompilationAsync();
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, $"{name}: {string.Join("\n", errors)}");

        var fixedTree = compilation.SyntaxTrees.Single(t => t.FilePath == host.Documents[0].FilePath);
        var model = compilation.GetSemanticModel(fixedTree);
        var calls = (await fixedTree.GetRootAsync()).DescendantNodes().OfType<InvocationExpressionSyntax>()
            .Where(call => call.Expression is IdentifierNameSyntax { Identifier.ValueText: "ChunkedScaledDotProductAttention" })
            .ToList();
        Assert.NotEmpty(calls);
        foreach (var call in calls)
        {
            var method = Assert.IsAssignableFrom<IMethodSymbol>(model.GetSymbolInfo(call).Symbol);
            Assert.All(method.DeclaringSyntaxReferences, reference => Assert.NotEqual(fixedTree, reference.SyntaxTree));
        }
    }

    [Fact]
    public void Host_finds_every_fix_provider_and_analyzer_of_the_package()
    {
        Assert.Contains(IdeHost.FixProviders, p => p.FixableDiagnosticIds.Contains(DiagnosticDescriptors.DirectCallInProcessorId));
        Assert.Contains(IdeHost.FixProviders, p => p.FixableDiagnosticIds.Contains(DiagnosticDescriptors.NotPartialId));
        Assert.Contains(IdeHost.Analyzers, a => a.SupportedDiagnostics.Any(d => d.Id == DiagnosticDescriptors.DirectCallInProcessorId));
        Assert.Contains(IdeHost.Analyzers, a => a.SupportedDiagnostics.Any(d => d.Id == DiagnosticDescriptors.NotPartialId));
    }
}
