using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.CodeFixes;
using ChunkedAttention.CodeFixes.HandWrittenAttention;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using ChunkedAttention.Generator.Tests.Generation;
using ChunkedAttention.Generator.Tests.Robustness;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.Generator.Tests.HandWrittenAttention;

/// <summary>What <see cref="HandWrittenFixRunner"/> did to a set of files.</summary>
internal sealed record FixRun(Compilation Original, ImmutableArray<Diagnostic> Reported, IReadOnlyDictionary<string, string> Fixed);

/// <summary>
/// Runs the SDPA007/SDPA008 analyzer over some files, as a build would (SDPA008 raised), and
/// applies every reported fix in one pass through the shared fix engine, as Fix All in solution
/// and <c>dotnet format</c> do.
/// </summary>
internal static class HandWrittenFixRunner
{
    public static async Task<FixRun> FixAllAsync(IReadOnlyList<(string Path, string Text)> files, bool includeOutsideProcessors = true)
    {
        using var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        // As GeneratorHarness compiles (every warning wave, CS1591 off), so warnings before and after compare.
        var specific = new Dictionary<string, ReportDiagnostic> { ["CS1591"] = ReportDiagnostic.Suppress };
        if (includeOutsideProcessors)
        {
            specific[DiagnosticDescriptors.HandWrittenOutsideProcessorId] = ReportDiagnostic.Warn;
        }

        var options = new CSharpCompilationOptions(
            OutputKind.DynamicallyLinkedLibrary,
            nullableContextOptions: NullableContextOptions.Enable,
            warningLevel: 9999,
            specificDiagnosticOptions: specific);
        var documents = files.Select(f => DocumentInfo.Create(
            DocumentId.CreateNewId(projectId),
            Path.GetFileName(f.Path),
            loader: TextLoader.From(TextAndVersion.Create(SourceText.From(f.Text), VersionStamp.Default, f.Path)),
            filePath: f.Path));
        var project = workspace.AddProject(ProjectInfo.Create(
            projectId, VersionStamp.Default, "HandWritten", "HandWritten", LanguageNames.CSharp,
            compilationOptions: options,
            parseOptions: GeneratorHarness.ParseOptions(),
            documents: documents,
            metadataReferences: GeneratorHarness.References));

        var compilation = (await project.GetCompilationAsync().ConfigureAwait(false))!;
        var reported = await compilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new HandWrittenAttentionAnalyzer()))
            .GetAnalyzerDiagnosticsAsync(CancellationToken.None)
            .ConfigureAwait(false);

        // Through the provider's Fix All code action, so Roslyn's post-processing (formatting of the
        // added using directive and attribute) runs as in the IDE and in dotnet format.
        var solution = workspace.CurrentSolution;
        var provider = new HandWrittenAttentionCodeFixProvider();
        var first = reported.FirstOrDefault(d => provider.FixableDiagnosticIds.Contains(d.Id));
        if (first is not null)
        {
            var context = new FixAllContext(
                solution.GetDocument(first.Location.SourceTree)!,
                provider,
                FixAllScope.Solution,
                UseChunkedAttentionCodeFixProvider.EquivalenceKey,
                provider.FixableDiagnosticIds,
                new RoslynPipeline.FixedDiagnosticProvider(reported),
                CancellationToken.None);
            var action = (await provider.GetFixAllProvider().GetFixAsync(context).ConfigureAwait(false))!;
            var operations = await action.GetOperationsAsync(CancellationToken.None).ConfigureAwait(false);
            solution = operations.OfType<ApplyChangesOperation>().Single().ChangedSolution;
        }

        var result = new Dictionary<string, string>();
        foreach (var document in solution.GetProject(projectId)!.Documents)
        {
            result.Add(document.FilePath!, (await document.GetTextAsync().ConfigureAwait(false)).ToString());
        }

        return new FixRun(compilation, reported, result);
    }

    /// <summary>Compiles <paramref name="sources"/> with the generator; the errors and warnings the compiler reports.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> Problems) CompileWithGenerator(IEnumerable<string> sources, string assemblyName = "HandWrittenFixed")
    {
        var run = GeneratorHarness.Run(GeneratorHarness.Compile(sources, assemblyName: assemblyName));
        var problems = run.OutputCompilation.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning)
            .ToImmutableArray();
        return (run.OutputCompilation, problems);
    }
}
