using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Tests.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// Does what an IDE does with the package, through public API only: the project references the generator
/// assembly as an analyzer reference (so the workspace runs the generator, as the IDE does), the analyzers and
/// fix providers are found in the package's assemblies the way Roslyn loads NuGet analyzers (exported types with
/// <c>[DiagnosticAnalyzer]</c> / <c>[ExportCodeFixProvider]</c> and a public parameterless constructor), and the
/// light bulb at a caret asks every provider for fixes on the diagnostics the caret's line reports, analyzed
/// twice as the light bulb does while the caret moves (duplicates merged by <see cref="Diagnostic.Equals(Diagnostic)"/>).
/// </summary>
internal sealed class IdeHost
{
    /// <summary>The generator/analyzer assembly of the package.</summary>
    public static Assembly AnalyzerAssembly { get; } = typeof(DiagnosticDescriptors).Assembly;

    /// <summary>The code-fix assembly of the package, loaded by name as a host would.</summary>
    public static Assembly CodeFixAssembly { get; } = Assembly.Load(new AssemblyName("ChunkedAttention.CodeFixes"));

    /// <summary>Every analyzer of the package.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> Analyzers { get; } = Discover<DiagnosticAnalyzer, DiagnosticAnalyzerAttribute>(
        AnalyzerAssembly, attribute => attribute.Languages.Contains(LanguageNames.CSharp));

    /// <summary>Every code-fix provider of the package.</summary>
    public static ImmutableArray<CodeFixProvider> FixProviders { get; } = Discover<CodeFixProvider, ExportCodeFixProviderAttribute>(
        CodeFixAssembly, attribute => attribute.Languages.Contains(LanguageNames.CSharp));

    private readonly AdhocWorkspace _workspace;

    private IdeHost(AdhocWorkspace workspace) => _workspace = workspace;

    /// <summary>The solution as the host currently holds it.</summary>
    public Solution Solution => _workspace.CurrentSolution;

    /// <summary>The one project's documents, in the order given.</summary>
    public IReadOnlyList<Document> Documents => Solution.Projects.Single().Documents.OrderBy(d => d.FilePath, StringComparer.Ordinal).ToList();

    /// <summary>
    /// Opens a workspace with one library project holding <paramref name="sources"/> (<c>/src/File0.cs</c>, ...),
    /// .NET 8 reference assemblies, TorchSharp, the runtime and the generator; every rule of the package on,
    /// including those off by default (SDPA005), as a project that raised them in .editorconfig.
    /// </summary>
    public static async Task<IdeHost> OpenAsync(params string[] sources)
    {
        var references = (await RoslynTestSetup.ReferenceAssemblies.ResolveAsync(LanguageNames.CSharp, CancellationToken.None))
            .AddRange(RoslynTestSetup.ProductReferences);
        var enabled = Analyzers.SelectMany(a => a.SupportedDiagnostics).Where(d => !d.IsEnabledByDefault)
            .ToDictionary(d => d.Id, _ => ReportDiagnostic.Warn);

        var workspace = new AdhocWorkspace();
        var projectId = ProjectId.CreateNewId();
        var documents = sources.Select((text, i) => DocumentInfo.Create(
            DocumentId.CreateNewId(projectId),
            $"File{i}.cs",
            loader: TextLoader.From(TextAndVersion.Create(SourceText.From(text), VersionStamp.Default, $"/src/File{i}.cs")),
            filePath: $"/src/File{i}.cs"));
        workspace.AddProject(ProjectInfo.Create(
            projectId,
            VersionStamp.Default,
            "IdeProject",
            "IdeProject",
            LanguageNames.CSharp,
            filePath: "/src/IdeProject.csproj",
            compilationOptions: new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                specificDiagnosticOptions: enabled),
            parseOptions: new CSharpParseOptions(LanguageVersion.CSharp12),
            documents: documents,
            metadataReferences: references,
            analyzerReferences: new[] { new AnalyzerFileReference(AnalyzerAssembly.Location, LoadedAssemblies.Instance) }));
        return new IdeHost(workspace);
    }

    /// <summary>Every diagnostic of the package in <paramref name="document"/> (one full pass, as the error list shows them).</summary>
    public async Task<ImmutableArray<Diagnostic>> DiagnosticsAsync(Document document)
    {
        var model = (await document.GetSemanticModelAsync())!;
        var analysis = model.Compilation.WithAnalyzers(Analyzers, document.Project.AnalyzerOptions);
        return (await analysis.GetAnalyzerSemanticDiagnosticsAsync(model, filterSpan: null, CancellationToken.None))
            .OrderBy(d => d.Location.SourceSpan.Start)
            .ToImmutableArray();
    }

    /// <summary>
    /// The diagnostics the light bulb at <paramref name="caret"/> considers: the caret line analyzed twice over
    /// one <see cref="CompilationWithAnalyzers"/>, the two passes merged as a set, those whose span holds the caret.
    /// </summary>
    public async Task<ImmutableArray<Diagnostic>> DiagnosticsAtCaretAsync(Document document, int caret)
    {
        var model = (await document.GetSemanticModelAsync())!;
        var text = await document.GetTextAsync();
        var line = text.Lines.GetLineFromPosition(caret).Span;
        var analysis = model.Compilation.WithAnalyzers(Analyzers, document.Project.AnalyzerOptions);

        var merged = new HashSet<Diagnostic>();
        for (var pass = 0; pass < 2; pass++)
        {
            merged.UnionWith(await analysis.GetAnalyzerSemanticDiagnosticsAsync(model, line, CancellationToken.None));
        }

        return merged.Where(d => d.Location.SourceSpan.Contains(caret) || d.Location.SourceSpan.End == caret)
            .OrderBy(d => d.Location.SourceSpan.Start)
            .ToImmutableArray();
    }

    /// <summary>What the light bulb lists for <paramref name="diagnostic"/>: every provider that fixes its ID, asked as the IDE asks.</summary>
    public static async Task<ImmutableArray<CodeAction>> FixesAsync(Document document, Diagnostic diagnostic)
    {
        var actions = new List<CodeAction>();
        foreach (var provider in FixProviders.Where(p => p.FixableDiagnosticIds.Contains(diagnostic.Id)))
        {
            var context = new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None);
            await provider.RegisterCodeFixesAsync(context);
        }

        return actions.ToImmutableArray();
    }

    /// <summary>Applies <paramref name="action"/> to the workspace, as picking it in the light bulb does.</summary>
    public async Task ApplyAsync(CodeAction action)
    {
        var operations = await action.GetOperationsAsync(CancellationToken.None);
        foreach (var operation in operations)
        {
            operation.Apply(_workspace, CancellationToken.None);
        }
    }

    /// <summary>The project's compilation, generated sources included (the workspace runs the generator).</summary>
    public async Task<Compilation> CompilationAsync() => (await Solution.Projects.Single().GetCompilationAsync())!;

    private static ImmutableArray<T> Discover<T, TExport>(Assembly assembly, Func<TExport, bool> forCSharp)
        where TExport : Attribute =>
        assembly.GetExportedTypes()
            .Where(type => !type.IsAbstract && typeof(T).IsAssignableFrom(type) && type.GetConstructor(Type.EmptyTypes) is not null)
            .Where(type => type.GetCustomAttributes<TExport>(inherit: false).Any(forCSharp))
            .OrderBy(type => type.FullName, StringComparer.Ordinal)
            .Select(type => (T)Activator.CreateInstance(type)!)
            .ToImmutableArray();

    /// <summary>Hands the workspace the assemblies this process already loaded, by path.</summary>
    private sealed class LoadedAssemblies : IAnalyzerAssemblyLoader
    {
        public static readonly LoadedAssemblies Instance = new();

        public void AddDependencyLocation(string fullPath)
        {
        }

        public Assembly LoadFromPath(string fullPath) =>
            AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => !a.IsDynamic && string.Equals(a.Location, fullPath, StringComparison.Ordinal))
            ?? Assembly.LoadFrom(Path.GetFullPath(fullPath));
    }
}
