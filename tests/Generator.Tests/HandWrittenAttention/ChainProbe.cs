using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using ChunkedAttention.Generator.Tests.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Tests.HandWrittenAttention;

/// <summary>One candidate final product and what the recogniser made of it.</summary>
internal sealed record ProbeResult(string File, int Line, string Type, ChainAnalysis Analysis, bool InProcessor = true)
{
    public string Outcome => Analysis.Chain is { } chain
        ? "fixed: " + chain.Summary
        : Analysis.IsAttention ? $"declined: {DeclineReasons.Describe(Analysis.Reason!.Value)}{(Analysis.Detail is null ? string.Empty : " (" + Analysis.Detail + ")")}" : "not attention";

    public override string ToString() => $"{File}:{Line} {Type}: {Outcome}";
}

/// <summary>
/// Runs the shared recogniser over every TorchSharp matmul/bmm of some sources, outside any
/// analyzer host: what the corpus report and the recogniser's own tests look at.
/// </summary>
internal static class ChainProbe
{
    public static IReadOnlyList<ProbeResult> Run(params (string Path, string Text)[] files) =>
        Run(GeneratorHarness.Compile(System.Array.Empty<string>())
            .AddSyntaxTrees(files.Select(f => CSharpSyntaxTree.ParseText(f.Text, GeneratorHarness.ParseOptions(), path: f.Path))));

    public static IReadOnlyList<ProbeResult> Run(Compilation compilation)
    {
        var recognizer = AttentionChainRecognizer.For(compilation, CancellationToken.None)!;
        var results = new List<ProbeResult>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax>())
            {
                if (model.GetOperation(node) is not IInvocationOperation invocation || !recognizer.IsCandidate(invocation))
                {
                    continue;
                }

                var analysis = recognizer.Analyze(invocation, CancellationToken.None);
                if (!analysis.IsAttention)
                {
                    continue;
                }

                var type = node.Ancestors().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeDeclarationSyntax>().FirstOrDefault()?.Identifier.ValueText ?? "<top level>";
                var name = node.Expression is Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax member ? member.Name : node.Expression;
                results.Add(new ProbeResult(System.IO.Path.GetFileName(tree.FilePath), name.GetLocation().GetLineSpan().StartLinePosition.Line + 1, type, analysis));
            }
        }

        return results;
    }
}
