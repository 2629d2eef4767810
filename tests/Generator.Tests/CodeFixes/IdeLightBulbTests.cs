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
        {
            "SDPA007 on a hand-written chain in a module",
            """
            using System;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace Models;

            public class CausalSelfAttention : nn.Module<Tensor, Tensor, Tensor>
            {
                private readonly Dropout attn_dropout = nn.Dropout(0.1);

                public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { }

                public override Tensor forward(Tensor x, Tensor mask)
                {
                    var att = x.matmul(x.transpose(-2, -1)) * (1.0 / Math.Sqrt(x.size(-1)));
                    att = att.masked_fill(mask == 0, float.NegativeInfinity);
                    att = nn.functional.softmax(att, dim: -1);
                    att = attn_dropout.forward(att);
                    return att.matmul(x);
                }
            }
            """,
            new[] { "SDPA007" }
        },
        {
            "two SDPA007 chains in one nested type, and SDPA008 in a helper",
            """
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Models
            {
                public class UNet
                {
                    class SelfAttention
                    {
                        Tensor A(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);
                        Tensor B(Tensor q, Tensor k, Tensor v, Tensor? m)
                        {
                            var s = torch.matmul(q, k.transpose(-1, -2)) / 8;
                            if (m is not null)
                            {
                                s = s + m;
                            }

                            return torch.matmul(s.softmax(-1), v);
                        }
                    }
                }

                static class Ops
                {
                    public static Tensor Attend(Tensor q, Tensor k, Tensor v) => q.bmm(k.transpose(1, 2)).div(8).softmax(-1).bmm(v);
                }
            }
            """,
            new[] { "SDPA007", "SDPA007", "SDPA008" }
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
        Assert.Contains(IdeHost.FixProviders, p => p.FixableDiagnosticIds.Contains(DiagnosticDescriptors.HandWrittenInProcessorId));
        Assert.Contains(IdeHost.FixProviders, p => p.FixableDiagnosticIds.Contains(DiagnosticDescriptors.HandWrittenOutsideProcessorId));
        Assert.Contains(IdeHost.Analyzers, a => a.SupportedDiagnostics.Any(d => d.Id == DiagnosticDescriptors.HandWrittenInProcessorId));
    }
}
