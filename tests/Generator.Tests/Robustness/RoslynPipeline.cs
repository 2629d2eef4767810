using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.CodeFixes;
using ChunkedAttention.CodeFixes.HandWrittenAttention;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using ChunkedAttention.Generator.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>Which assemblies a robustness case compiles against, as the user projects the product meets do.</summary>
internal enum ReferenceSet
{
    /// <summary>Framework, TorchSharp and the ChunkedAttention runtime: a project using the package.</summary>
    Full,

    /// <summary>TorchSharp without the runtime: a project before the package is added.</summary>
    TorchSharpOnly,

    /// <summary>The runtime without TorchSharp (broken restore, or a project that only sees the attribute).</summary>
    RuntimeOnly,

    /// <summary>Neither: every other project the analyzers and generator run in.</summary>
    FrameworkOnly,
}

/// <summary>One source file of a robustness case.</summary>
internal readonly record struct SourceFile(string Path, string Text);

/// <summary>
/// Runs everything the product plugs into a user's build and IDE over one set of sources, the way
/// a host does: the generator, then both analyzers over the compilation with the generated files,
/// then every code fix offered for their diagnostics and Fix All, each computed and applied to a
/// workspace. Nothing here judges the diagnostics themselves; it records what went wrong in the
/// product's code (an exception anywhere, a generator failure, generated code that does not parse
/// or needs a newer language version than the user's own code, a fix that cannot be applied) and
/// counts what ran, for the figures the tests print.
/// </summary>
internal static class RoslynPipeline
{
    /// <summary>The analyzers a project referencing the package runs.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> Analyzers { get; } =
        ImmutableArray.Create<DiagnosticAnalyzer>(new SdpaCallAnalyzer(), new ChunkedAttentionAttributeAnalyzer(), new HandWrittenAttentionAnalyzer());

    /// <summary>The code fix providers the package ships.</summary>
    public static ImmutableArray<CodeFixProvider> Fixers { get; } =
        ImmutableArray.Create<CodeFixProvider>(new UseChunkedAttentionCodeFixProvider(), new MakePartialCodeFixProvider(), new HandWrittenAttentionCodeFixProvider());

    /// <summary>"Feature '…' is not available in C# 7.3 / 8.0 / 9.0 / 10.0 / 11.0": the versions the cases use.</summary>
    private static readonly ImmutableHashSet<string> FeatureNotAvailableIds =
        ImmutableHashSet.Create("CS8370", "CS8400", "CS8773", "CS8936", "CS9058");

    private static readonly ImmutableArray<MetadataReference> Framework = FrameworkReferences();
    private static readonly MetadataReference TorchSharp = MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location);
    private static readonly MetadataReference Runtime = MetadataReference.CreateFromFile(typeof(ChunkedAttentionAttribute).Assembly.Location);

    /// <summary>The metadata references of <paramref name="set"/>.</summary>
    public static ImmutableArray<MetadataReference> References(ReferenceSet set) => set switch
    {
        ReferenceSet.Full => Framework.Add(TorchSharp).Add(Runtime),
        ReferenceSet.TorchSharpOnly => Framework.Add(TorchSharp),
        ReferenceSet.RuntimeOnly => Framework.Add(Runtime),
        _ => Framework,
    };

    /// <summary>
    /// Compilation options of a user library, with SDPA005 and SDPA008 (off by default) raised so
    /// their analysis and fixes run too.
    /// </summary>
    public static CSharpCompilationOptions CompilationOptions { get; } = new(
        OutputKind.DynamicallyLinkedLibrary,
        nullableContextOptions: NullableContextOptions.Enable,
        allowUnsafe: true,
        specificDiagnosticOptions: new Dictionary<string, ReportDiagnostic>
        {
            [DiagnosticDescriptors.DirectCallOutsideProcessorId] = ReportDiagnostic.Warn,
            [DiagnosticDescriptors.HandWrittenOutsideProcessorId] = ReportDiagnostic.Warn,
        });

    /// <summary>A generator driver holding the product's generator.</summary>
    public static GeneratorDriver CreateDriver(CSharpParseOptions parseOptions, IIncrementalGenerator? generator = null) =>
        CSharpGeneratorDriver.Create(
            new[] { (generator ?? new ChunkedAttentionGenerator()).AsSourceGenerator() },
            parseOptions: parseOptions);

    /// <summary>Analyzer options as a host passes them: exceptions go to <paramref name="onException"/>.</summary>
    public static CompilationWithAnalyzersOptions AnalyzerOptions(Action<Exception, DiagnosticAnalyzer, Diagnostic> onException) =>
        new(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
            onException,
            concurrentAnalysis: true,
            logAnalyzerExecutionTime: false,
            reportSuppressedDiagnostics: false,
            analyzerExceptionFilter: null);

    /// <summary>A workspace holding one project with <paramref name="files"/>, as an IDE would.</summary>
    public static (AdhocWorkspace Workspace, Project Project) CreateProject(
        IReadOnlyList<SourceFile> files, ReferenceSet references, LanguageVersion version)
    {
        var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        var documents = files.Select(file => DocumentInfo.Create(
            DocumentId.CreateNewId(projectId),
            Path.GetFileName(file.Path),
            loader: TextLoader.From(TextAndVersion.Create(SourceText.From(file.Text), VersionStamp.Default, file.Path)),
            filePath: file.Path));
        var project = workspace.AddProject(ProjectInfo.Create(
            projectId,
            VersionStamp.Default,
            "RobustnessInput",
            "RobustnessInput",
            LanguageNames.CSharp,
            compilationOptions: CompilationOptions,
            parseOptions: new CSharpParseOptions(version, DocumentationMode.Parse),
            documents: documents,
            metadataReferences: References(references)));
        return (workspace, project);
    }

    /// <summary>
    /// Runs the generator, the analyzers and the fixes over <paramref name="files"/>. Failures are
    /// returned (and counted in <paramref name="stats"/>); a host-side cancellation is rethrown.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RunAsync(
        IReadOnlyList<SourceFile> files,
        ReferenceSet references,
        LanguageVersion version,
        PipelineStats stats,
        int maxFixesPerCase,
        CancellationToken cancellationToken,
        PipelineComponents? components = null)
    {
        components ??= PipelineComponents.Product;
        var failures = new List<string>();
        var (workspace, project) = CreateProject(files, references, version);
        using (workspace)
        {
            var compilation = (CSharpCompilation)(await project.GetCompilationAsync(cancellationToken).ConfigureAwait(false))!;
            stats.AddCase(files);

            // 1. The generator, as the compiler runs it.
            var generated = RunGenerator(compilation, (CSharpParseOptions)project.ParseOptions!, components.Generator, failures, stats, cancellationToken);

            // 2. Both analyzers over what the compiler sees: the sources plus the generated files.
            var diagnostics = await RunAnalyzersAsync(generated, components.Analyzers, failures, cancellationToken).ConfigureAwait(false);
            stats.AddDiagnostics(diagnostics);

            // 3. Every fix offered for those diagnostics (a bounded number per case), then Fix All.
            if (maxFixesPerCase > 0)
            {
                await RunFixesAsync(workspace, components.Fixers, diagnostics, maxFixesPerCase, failures, stats, cancellationToken).ConfigureAwait(false);
            }
        }

        stats.AddFailures(failures.Count);
        return failures;
    }

    /// <summary>The analyzers' diagnostics for <paramref name="files"/>, after the generator ran (failures included, for the caller to assert on).</summary>
    public static async Task<(ImmutableArray<Diagnostic> Diagnostics, IReadOnlyList<string> Failures)> AnalyzeAsync(
        IReadOnlyList<SourceFile> files, ReferenceSet references, LanguageVersion version, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        var (workspace, project) = CreateProject(files, references, version);
        using (workspace)
        {
            var compilation = (CSharpCompilation)(await project.GetCompilationAsync(cancellationToken).ConfigureAwait(false))!;
            var generated = RunGenerator(compilation, (CSharpParseOptions)project.ParseOptions!, PipelineComponents.Product.Generator, failures, new PipelineStats(), cancellationToken);
            var diagnostics = await RunAnalyzersAsync(generated, PipelineComponents.Product.Analyzers, failures, cancellationToken).ConfigureAwait(false);
            return (diagnostics, failures);
        }
    }

    private static Compilation RunGenerator(
        CSharpCompilation compilation,
        CSharpParseOptions parseOptions,
        IIncrementalGenerator generator,
        List<string> failures,
        PipelineStats stats,
        CancellationToken cancellationToken)
    {
        var driver = CreateDriver(parseOptions, generator)
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics, cancellationToken);
        var result = driver.GetRunResult().Results.Single();
        if (result.Exception is { } exception)
        {
            failures.Add($"generator threw: {exception}");
        }

        // CS8784: the generator failed to initialize; CS8785: it failed to generate (the exception's diagnostic).
        foreach (var diagnostic in diagnostics.Where(d => d.Id is "CS8784" or "CS8785"))
        {
            failures.Add($"generator diagnostic: {diagnostic}");
        }

        foreach (var source in result.GeneratedSources)
        {
            stats.AddGeneratedSource();

            // Whatever the input, the generator must never add a file that does not even parse. Parsed
            // at the newest language version: what the project's version allows is a separate question.
            var newest = parseOptions.WithLanguageVersion(LanguageVersion.Preview);
            var syntaxErrors = CSharpSyntaxTree.ParseText(source.SourceText, newest, cancellationToken: cancellationToken)
                .GetDiagnostics(cancellationToken)
                .Where(d => d.Severity == DiagnosticSeverity.Error)
                .ToList();
            if (syntaxErrors.Count > 0)
            {
                failures.Add($"generated {source.HintName} does not parse: {string.Join("; ", syntaxErrors)}{Environment.NewLine}{source.SourceText}");
            }
        }

        AddNewerLanguageFailures(compilation, output, result.GeneratedSources, failures, cancellationToken);
        return output;
    }

    /// <summary>
    /// At the project's own language version, a generated file must not need a feature the version lacks
    /// (CS8370 and its kin), unless the user's code needs that feature too: a declaration the generated file
    /// restates (a record at C# 7.3), or a runtime declared in source with init-only setters.
    /// </summary>
    private static void AddNewerLanguageFailures(
        Compilation input,
        Compilation output,
        ImmutableArray<GeneratedSourceResult> generatedSources,
        List<string> failures,
        CancellationToken cancellationToken)
    {
        HashSet<string>? usersOwn = null;
        foreach (var source in generatedSources)
        {
            var newer = output.GetSemanticModel(source.SyntaxTree).GetDiagnostics(cancellationToken: cancellationToken)
                .Where(d => FeatureNotAvailableIds.Contains(d.Id))
                .ToList();
            if (newer.Count == 0)
            {
                continue;
            }

            // Rare, so the whole input is compiled only here.
            usersOwn ??= input.GetDiagnostics(cancellationToken)
                .Where(d => FeatureNotAvailableIds.Contains(d.Id))
                .Select(d => d.GetMessage(CultureInfo.InvariantCulture))
                .ToHashSet(StringComparer.Ordinal);
            var ours = newer.Where(d => !usersOwn.Contains(d.GetMessage(CultureInfo.InvariantCulture))).ToList();
            if (ours.Count > 0)
            {
                failures.Add($"generated {source.HintName} needs a newer language version: {string.Join("; ", ours)}{Environment.NewLine}{source.SourceText}");
            }
        }
    }

    private static async Task<ImmutableArray<Diagnostic>> RunAnalyzersAsync(
        Compilation compilation, ImmutableArray<DiagnosticAnalyzer> analyzers, List<string> failures, CancellationToken cancellationToken)
    {
        var exceptions = new ConcurrentQueue<string>();
        var withAnalyzers = compilation.WithAnalyzers(
            analyzers,
            AnalyzerOptions((exception, analyzer, _) => exceptions.Enqueue($"{analyzer.GetType().Name} threw: {exception}")));
        var diagnostics = await withAnalyzers.GetAnalyzerDiagnosticsAsync(cancellationToken).ConfigureAwait(false);

        failures.AddRange(exceptions);

        // AD0001 is how a host surfaces an analyzer exception when no callback is installed.
        failures.AddRange(diagnostics.Where(d => d.Id == "AD0001").Select(d => $"analyzer exception diagnostic: {d}"));
        return diagnostics;
    }

    private static async Task RunFixesAsync(
        AdhocWorkspace workspace,
        ImmutableArray<CodeFixProvider> fixers,
        ImmutableArray<Diagnostic> diagnostics,
        int maxFixesPerCase,
        List<string> failures,
        PipelineStats stats,
        CancellationToken cancellationToken)
    {
        var solution = workspace.CurrentSolution;
        var fixable = diagnostics
            .Where(d => d.Location.IsInSource && solution.GetDocument(d.Location.SourceTree) is not null)
            .Select(d => (Diagnostic: d, Provider: fixers.FirstOrDefault(f => f.FixableDiagnosticIds.Contains(d.Id))))
            .Where(pair => pair.Provider is not null)
            .ToList();

        // Prefer one diagnostic of each ID, then the rest in order, up to the budget.
        var chosen = fixable.GroupBy(pair => pair.Diagnostic.Id).Select(g => g.First())
            .Concat(fixable)
            .Distinct()
            .Take(maxFixesPerCase)
            .ToList();

        ApplyChangesOperation? toApply = null;
        foreach (var (diagnostic, provider) in chosen)
        {
            var document = solution.GetDocument(diagnostic.Location.SourceTree)!;
            var actions = new List<CodeAction>();
            var context = new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), cancellationToken);
            try
            {
                await provider!.RegisterCodeFixesAsync(context).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failures.Add($"{provider!.GetType().Name}.RegisterCodeFixesAsync threw for {diagnostic}: {exception}");
                continue;
            }

            foreach (var action in actions)
            {
                stats.AddFixOffered();
                var operation = await ComputeAsync(action, solution, $"{provider!.GetType().Name} for {diagnostic}", failures, cancellationToken).ConfigureAwait(false);
                if (operation is not null)
                {
                    stats.AddFixComputed();
                    toApply ??= operation;
                }
            }
        }

        // Fix All from the first fixable diagnostic of each provider, through its own FixAllProvider, at
        // a scope that varies with the case (document, project or solution).
        foreach (var (diagnostic, provider) in fixable.GroupBy(pair => pair.Provider).Select(g => g.First()))
        {
            var document = solution.GetDocument(diagnostic.Location.SourceTree)!;
            var fixAll = provider!.GetFixAllProvider();
            if (fixAll is null)
            {
                continue;
            }

            var equivalenceKey = provider switch
            {
                UseChunkedAttentionCodeFixProvider or HandWrittenAttentionCodeFixProvider => UseChunkedAttentionCodeFixProvider.EquivalenceKey,
                MakePartialCodeFixProvider => MakePartialCodeFixProvider.EquivalenceKey,
                _ => null,
            };
            var scope = (diagnostic.Location.SourceSpan.Start % 3) switch
            {
                0 => FixAllScope.Document,
                1 => FixAllScope.Project,
                _ => FixAllScope.Solution,
            };
            var context = new FixAllContext(
                document,
                provider,
                scope,
                equivalenceKey,
                provider.FixableDiagnosticIds,
                new FixedDiagnosticProvider(diagnostics),
                cancellationToken);
            CodeAction? action;
            try
            {
                action = await fixAll.GetFixAsync(context).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failures.Add($"Fix All ({scope}) of {provider.GetType().Name} threw: {exception}");
                continue;
            }

            if (action is not null
                && await ComputeAsync(action, solution, $"Fix All ({scope}) of {provider.GetType().Name}", failures, cancellationToken).ConfigureAwait(false) is { } operation)
            {
                stats.AddFixAllComputed();
                toApply ??= operation;
            }
        }

        // Apply one fix to the workspace, as the IDE does when the user picks it. (Every computed fix
        // branches from the same snapshot, so only one of them can be applied.)
        if (toApply is not null)
        {
            try
            {
                toApply.Apply(workspace, cancellationToken);
                var expected = toApply.ChangedSolution;
                foreach (var id in expected.GetChanges(solution).GetProjectChanges().SelectMany(p => p.GetChangedDocuments()))
                {
                    var applied = (await workspace.CurrentSolution.GetDocument(id)!.GetTextAsync(cancellationToken).ConfigureAwait(false)).ToString();
                    var wanted = (await expected.GetDocument(id)!.GetTextAsync(cancellationToken).ConfigureAwait(false)).ToString();
                    if (applied != wanted)
                    {
                        failures.Add($"applying a fix left {id} different from the fix's solution");
                    }
                }

                stats.AddFixApplied();
            }
            catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failures.Add($"applying a fix threw: {exception}");
            }
        }
    }

    /// <summary>Computes a code action's operations and materializes every document it changes.</summary>
    private static async Task<ApplyChangesOperation?> ComputeAsync(
        CodeAction action, Solution original, string what, List<string> failures, CancellationToken cancellationToken)
    {
        try
        {
            if (string.IsNullOrWhiteSpace(action.Title) || string.IsNullOrWhiteSpace(action.EquivalenceKey))
            {
                failures.Add($"{what}: code action without a title or equivalence key");
            }

            var operations = await action.GetOperationsAsync(cancellationToken).ConfigureAwait(false);
            ApplyChangesOperation? result = null;
            foreach (var operation in operations)
            {
                if (operation is not ApplyChangesOperation apply)
                {
                    continue;
                }

                foreach (var id in apply.ChangedSolution.GetChanges(original).GetProjectChanges().SelectMany(p => p.GetChangedDocuments()))
                {
                    // Reading text and tree forces every lazily computed edit of the fix.
                    var document = apply.ChangedSolution.GetDocument(id)!;
                    await document.GetTextAsync(cancellationToken).ConfigureAwait(false);
                    await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
                }

                result ??= apply;
            }

            return result;
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            failures.Add($"{what}: computing the fix threw: {exception}");
            return null;
        }
    }

    private static ImmutableArray<MetadataReference> FrameworkReferences()
    {
        // Only the shared framework's own assemblies, as a user project has (not the test host's Roslyn or xunit).
        var frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var trusted = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        return trusted
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(path => string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal))
            .OrderBy(path => path, StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    }

    /// <summary>Fix All's view of the diagnostics: the ones the analyzers reported for this case.</summary>
    internal sealed class FixedDiagnosticProvider : FixAllContext.DiagnosticProvider
    {
        private readonly ImmutableArray<Diagnostic> _diagnostics;

        public FixedDiagnosticProvider(ImmutableArray<Diagnostic> diagnostics) => _diagnostics = diagnostics;

        public override async Task<IEnumerable<Diagnostic>> GetDocumentDiagnosticsAsync(Document document, CancellationToken cancellationToken)
        {
            var tree = await document.GetSyntaxTreeAsync(cancellationToken).ConfigureAwait(false);
            return _diagnostics.Where(d => d.Location.SourceTree == tree);
        }

        public override Task<IEnumerable<Diagnostic>> GetProjectDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult(_diagnostics.Where(d => !d.Location.IsInSource));

        public override Task<IEnumerable<Diagnostic>> GetAllDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult<IEnumerable<Diagnostic>>(_diagnostics);
    }
}

/// <summary>What <see cref="RoslynPipeline"/> runs: the product's components, or stand-ins that prove the harness notices failures.</summary>
internal sealed record PipelineComponents(
    ImmutableArray<DiagnosticAnalyzer> Analyzers,
    IIncrementalGenerator Generator,
    ImmutableArray<CodeFixProvider> Fixers)
{
    /// <summary>The analyzers, generator and code fixes the package ships.</summary>
    public static PipelineComponents Product { get; } =
        new(RoslynPipeline.Analyzers, new ChunkedAttentionGenerator(), RoslynPipeline.Fixers);
}
