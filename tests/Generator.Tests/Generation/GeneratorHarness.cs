using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using ChunkedAttention.Generator.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Compiles test sources the way a user project does (the running framework, TorchSharp, the
/// ChunkedAttention runtime) and runs the generator over them with step tracking on.
/// </summary>
internal static class GeneratorHarness
{
    /// <summary>The newest language version the compiler in the package (Roslyn 4.8) knows.</summary>
    public const LanguageVersion Newest = LanguageVersion.CSharp12;

    /// <summary>
    /// The running framework's assemblies (from the trusted platform assemblies, so no download),
    /// TorchSharp's managed assembly and the runtime.
    /// </summary>
    public static ImmutableArray<MetadataReference> References { get; } = CreateReferences(includeProduct: true);

    /// <summary>The framework alone: a project without TorchSharp or the runtime.</summary>
    public static ImmutableArray<MetadataReference> FrameworkReferences { get; } = CreateReferences(includeProduct: false);

    /// <summary>Parse options as an SDK build uses them, with XML docs checked.</summary>
    public static CSharpParseOptions ParseOptions(LanguageVersion version = Newest) =>
        new(version, DocumentationMode.Diagnose);

    /// <summary>
    /// A library compilation of <paramref name="sources"/> with every warning wave; nullable enabled unless
    /// said, from C# 8 on (below, the option itself is an error, CS8630).
    /// </summary>
    public static CSharpCompilation Compile(
        IEnumerable<string> sources,
        LanguageVersion version = Newest,
        IEnumerable<MetadataReference>? references = null,
        string assemblyName = "GeneratorTestInput",
        NullableContextOptions? nullable = null)
    {
        CSharpParseOptions parseOptions = ParseOptions(version);
        SyntaxTree[] trees = sources
            .Select((source, index) => CSharpSyntaxTree.ParseText(source, parseOptions, path: $"Input{index}.cs"))
            .ToArray();
        return CSharpCompilation.Create(
            assemblyName,
            trees,
            references ?? References,
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: nullable ?? (version >= LanguageVersion.CSharp8 ? NullableContextOptions.Enable : NullableContextOptions.Disable),
                warningLevel: 9999,
                deterministic: true,
                // Test inputs have public types without XML docs; the generated members are private, so
                // CS1591 never concerns them, while every other documentation warning stays on.
                specificDiagnosticOptions: new Dictionary<string, ReportDiagnostic> { ["CS1591"] = ReportDiagnostic.Suppress }));
    }

    /// <summary>A driver with the generator, tracking every step so caching can be asserted.</summary>
    public static GeneratorDriver CreateDriver(CSharpParseOptions? parseOptions = null) =>
        CSharpGeneratorDriver.Create(
            new[] { new ChunkedAttentionGenerator().AsSourceGenerator() },
            parseOptions: parseOptions ?? ParseOptions(),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator once over <paramref name="compilation"/>.</summary>
    public static GeneratorRun Run(CSharpCompilation compilation)
    {
        GeneratorDriver driver = CreateDriver((CSharpParseOptions)compilation.SyntaxTrees.First().Options)
            .RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        return new GeneratorRun(driver, output, diagnostics);
    }

    /// <summary>Errors and warnings of a compilation (hidden and info diagnostics are not failures).</summary>
    public static ImmutableArray<Diagnostic> Problems(Compilation compilation) =>
        compilation.GetDiagnostics()
            .Where(diagnostic => diagnostic.Severity >= DiagnosticSeverity.Warning)
            .ToImmutableArray();

    /// <summary>Formats diagnostics for an assertion message.</summary>
    public static string Describe(IEnumerable<Diagnostic> diagnostics) =>
        string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString()));

    private static ImmutableArray<MetadataReference> CreateReferences(bool includeProduct)
    {
        // Only the shared framework's assemblies: the test host's own (xunit, Roslyn) would not be in a user project.
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        string trusted = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        IEnumerable<string> paths = trusted
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(path => string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal))
            .OrderBy(path => path, StringComparer.Ordinal);
        if (includeProduct)
        {
            paths = paths.Concat(new[]
            {
                typeof(TorchSharp.torch).Assembly.Location,
                typeof(ChunkedAttention.ChunkedSdpa).Assembly.Location,
            });
        }

        return paths.Select(path => (MetadataReference)MetadataReference.CreateFromFile(path)).ToImmutableArray();
    }
}

/// <summary>The result of one generator run.</summary>
/// <param name="Driver">The driver after the run (run it again for incremental steps).</param>
/// <param name="OutputCompilation">The input compilation plus the generated files.</param>
/// <param name="GeneratorDiagnostics">Diagnostics from running the generator (exceptions show up here).</param>
internal sealed record GeneratorRun(GeneratorDriver Driver, Compilation OutputCompilation, ImmutableArray<Diagnostic> GeneratorDiagnostics)
{
    /// <summary>The single generator's result.</summary>
    public GeneratorRunResult Result => Driver.GetRunResult().Results.Single();

    /// <summary>Generated files by hint name.</summary>
    public IReadOnlyDictionary<string, string> Sources =>
        Result.GeneratedSources.ToDictionary(source => source.HintName, source => source.SourceText.ToString(), StringComparer.Ordinal);
}
