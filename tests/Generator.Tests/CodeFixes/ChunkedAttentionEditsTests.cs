using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.CodeFixes;
using ChunkedAttention.Generator.Tests.Robustness;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// <see cref="ChunkedAttentionEdits"/> used directly, as a fix other than the call rename uses it (the
/// hand-written attention fix replaces several statements with one wrapper call and marks the type).
/// </summary>
public class ChunkedAttentionEditsTests
{
    private const string HandWritten = """
        using System;
        using static TorchSharp.torch;

        namespace Models
        {
            /// <summary>Attention written out by hand.</summary>
            internal sealed class ManualAttention
            {
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(q.shape[^1]);
                    var weights = scores.softmax(-1);
                    return weights.matmul(v);
                }
            }
        }
        """;

    [Theory]
    [InlineData("\t", "\r\n")]
    [InlineData("  ", "\n")]
    public async Task A_multi_statement_replacement_and_the_type_marked_twice_get_one_attribute(string indent, string eol)
    {
        var (document, root, model) = await OpenAsync(LayoutPreservationTests.Layout(HandWritten, indent, eol));
        var declaration = root.DescendantNodes().OfType<ClassDeclarationSyntax>().Single();
        var type = model.GetDeclaredSymbol(declaration)!;
        var body = declaration.DescendantNodes().OfType<BlockSyntax>().Single();
        var statements = TextSpan.FromBounds(body.Statements.First().SpanStart, body.Statements.Last().Span.End);

        var edits = new ChunkedAttentionEdits(document.Project.Solution);
        edits.Replace(document.Id, statements, "return ChunkedScaledDotProductAttention(q, k, v);");
        edits.AddChunkedAttention(type, declaration);
        edits.AddChunkedAttention(type, declaration);
        var solution = await edits.ApplyAsync(CancellationToken.None);

        var text = (await solution.GetDocument(document.Id)!.GetTextAsync()).ToString();
        Assert.Equal(LayoutPreservationTests.Layout("""
            using System;
            using ChunkedAttention;
            using static TorchSharp.torch;

            namespace Models
            {
                /// <summary>Attention written out by hand.</summary>
                [ChunkedAttention]
                internal sealed partial class ManualAttention
                {
                    public Tensor Forward(Tensor q, Tensor k, Tensor v)
                    {
                        return ChunkedScaledDotProductAttention(q, k, v);
                    }
                }
            }
            """, indent, eol), text);
    }

    [Fact]
    public async Task Nothing_requested_leaves_the_solution_as_it_was()
    {
        var (document, _, _) = await OpenAsync(HandWritten);
        var edits = new ChunkedAttentionEdits(document.Project.Solution);

        Assert.True(edits.IsEmpty);
        Assert.Same(document.Project.Solution, await edits.ApplyAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Overlapping_replacements_are_refused()
    {
        var (document, root, _) = await OpenAsync(HandWritten);
        var body = root.DescendantNodes().OfType<BlockSyntax>().Single();
        var edits = new ChunkedAttentionEdits(document.Project.Solution);
        edits.Replace(document.Id, body.Statements[0].Span, "var a = 1;");
        edits.Replace(document.Id, TextSpan.FromBounds(body.Statements[0].SpanStart + 4, body.Statements[1].Span.End), "var b = 2;");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => edits.ApplyAsync(CancellationToken.None));
        Assert.Contains("overlapping", error.Message, StringComparison.Ordinal);
    }

    private static async Task<(Document Document, SyntaxNode Root, SemanticModel Model)> OpenAsync(string source)
    {
        var (_, project) = RoslynPipeline.CreateProject(new[] { new SourceFile("/0/ManualAttention.cs", source) }, ReferenceSet.Full, LanguageVersion.CSharp12);
        var document = project.Documents.Single();
        var root = (await document.GetSyntaxRootAsync())!;
        var model = (await document.GetSemanticModelAsync())!;
        Assert.Empty(model.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        return (document, root, model);
    }
}
