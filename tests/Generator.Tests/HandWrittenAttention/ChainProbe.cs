using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using ChunkedAttention.Generator.Rules;
using ChunkedAttention.Generator.Tests.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Tests.HandWrittenAttention;

/// <summary>
/// One candidate final product, what the recogniser made of it, and whether its type can receive the wrapper
/// (the wrapper rulebook's decision, which the analyzer makes before it asks the recogniser).
/// </summary>
internal sealed record ProbeResult(string File, int Line, string Type, ChainAnalysis Analysis, WrapperHost Host)
{
    /// <summary>Why it is not fixed: the recogniser's reason, else the host's; null when it is.</summary>
    public string? Declined => Analysis.Reason?.ToString() ?? (Analysis.Chain is not null && Host != WrapperHost.Possible ? "Host" + Host : null);

    /// <summary>Fixed: the recogniser accepts the chain and its type can receive the wrapper.</summary>
    public bool IsFixed => Analysis.Chain is not null && Host == WrapperHost.Possible;

    public string Outcome => IsFixed
        ? "fixed: " + Analysis.Chain!.Summary
        : Analysis.IsAttention ? $"declined: {Describe()}{(Analysis.Detail is null ? string.Empty : " (" + Analysis.Detail + ")")}" : "not attention";

    /// <summary>The reason in words, as the corpus report prints it.</summary>
    public string Describe() => Analysis.Reason is { } reason ? DeclineReasons.Describe(reason) : "wrapper cannot be hosted: " + Host;

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
        var host = WrapperHostFacts.For(compilation, CancellationToken.None);
        var options = new AnalyzerOptions(System.Collections.Immutable.ImmutableArray<AdditionalText>.Empty);
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
                var decided = host.Decide(WrapperHostFacts.HostCandidate(model.GetEnclosingSymbol(node.SpanStart)), options, CancellationToken.None);
                results.Add(new ProbeResult(System.IO.Path.GetFileName(tree.FilePath), name.GetLocation().GetLineSpan().StartLinePosition.Line + 1, type, analysis, decided));
            }
        }

        return results;
    }
}
