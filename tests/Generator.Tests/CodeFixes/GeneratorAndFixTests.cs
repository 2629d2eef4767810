using System;
using System.Collections.Immutable;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Tests.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// The fixed sources of <see cref="FixAllTests"/> compiled the way a build does: the real generator
/// runs, then the compiler and both analyzers. Every code-fix test also does this through the
/// testing framework; this one states the outcome explicitly and checks the generator really
/// produced a wrapper for every type the fix marked.
/// </summary>
public class GeneratorAndFixTests
{
    [Fact]
    public async Task Before_the_fix_calls_are_reported_after_it_the_generated_code_compiles_clean()
    {
        var before = await CompileWithGeneratorAsync(Unmark(FixAllTests.FileA), Unmark(FixAllTests.FileB));
        Assert.Equal(9, before.Analyzer.Count(d => d.Id is "SDPA001" or "SDPA004"));

        var after = await CompileWithGeneratorAsync(FixAllTests.FixedA, FixAllTests.FixedB);

        Assert.Empty(after.Compiler.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(after.Analyzer);
        Assert.Equal(
            new[] { "AttentionOps", "AttnBlock", "CrossAttention", "SelfAttention", "SplitAttention" },
            after.WrapperTypes);
    }

    private static string Unmark(string markup) => Regex.Replace(markup, @"\{\|SDPA00\d:([^|]*)\|\}", "$1");

    private static async Task<(ImmutableArray<Diagnostic> Compiler, ImmutableArray<Diagnostic> Analyzer, string[] WrapperTypes)> CompileWithGeneratorAsync(params string[] sources)
    {
        var references = (await RoslynTestSetup.ReferenceAssemblies.ResolveAsync(LanguageNames.CSharp, CancellationToken.None))
            .AddRange(RoslynTestSetup.ProductReferences);
        var parseOptions = new CSharpParseOptions(LanguageVersion.CSharp12);
        var compilation = CSharpCompilation.Create(
            "Fixed",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, parseOptions, path: $"/src/File{i}.cs")),
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

        var generator = ((IIncrementalGenerator)Activator.CreateInstance(CodeFixTest<ChunkedAttention.CodeFixes.UseChunkedAttentionCodeFixProvider>.GeneratorType)!).AsSourceGenerator();
        CSharpGeneratorDriver.Create(new[] { generator }, parseOptions: parseOptions)
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        Assert.Empty(generatorDiagnostics);

        var analyzerDiagnostics = await output
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new SdpaCallAnalyzer(), new ChunkedAttentionAttributeAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();

        // Types that received the wrapper, read from the generated trees' symbols rather than their text.
        var wrapperTypes = output.SyntaxTrees
            .Except(compilation.SyntaxTrees)
            .SelectMany(tree => tree.GetRoot().DescendantNodes()
                .OfType<Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax>()
                .Where(m => m.Identifier.ValueText == "ChunkedScaledDotProductAttention")
                .Select(m => output.GetSemanticModel(tree).GetDeclaredSymbol(m)!.ContainingType.Name))
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToArray();

        return (output.GetDiagnostics(), analyzerDiagnostics, wrapperTypes);
    }
}
