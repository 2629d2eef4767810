using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>What every analyzer and code-fix test compiles against: .NET 8 reference assemblies, TorchSharp and the ChunkedAttention runtime.</summary>
internal static class RoslynTestSetup
{
    /// <summary>The .NET 8 reference pack (TorchSharp 0.107 targets net8.0); resolved once from NuGet and cached.</summary>
    public static ReferenceAssemblies ReferenceAssemblies { get; } = ReferenceAssemblies.Net.Net80;

    /// <summary>TorchSharp's managed assembly and the ChunkedAttention runtime, as a user project references them.</summary>
    public static ImmutableArray<MetadataReference> ProductReferences { get; } = ImmutableArray.Create<MetadataReference>(
        MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(ChunkedAttention.ChunkedAttentionAttribute).Assembly.Location));

    /// <summary>The repository root (the folder holding Generators.sln), found by walking up from the test assembly.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>
    /// The testing framework force-enables every diagnostic the analyzers under test support
    /// (ReportDiagnostic.Default in the project options, which turns disabled-by-default rules on).
    /// Turn disabled-by-default rules (SDPA005) back off unless the test's .editorconfig configures
    /// them, as in a real build; a project-level Suppress would also override .editorconfig, hence the
    /// check. <see cref="SdpaCallAnalyzerTests"/> checks the real default on a plain compilation too.
    /// </summary>
    public static Solution KeepDefaultSeverities(Solution solution, ProjectId projectId)
    {
        var project = solution.GetProject(projectId)!;
        var configured = string.Concat(project.AnalyzerConfigDocuments.Select(d => d.GetTextAsync().GetAwaiter().GetResult().ToString()));
        var options = project.CompilationOptions!;
        var specific = options.SpecificDiagnosticOptions;
        foreach (var id in DisabledByDefault)
        {
            if (!configured.Contains($"dotnet_diagnostic.{id}.severity", StringComparison.Ordinal))
            {
                specific = specific.SetItem(id, ReportDiagnostic.Suppress);
            }
        }

        return solution.WithProjectCompilationOptions(projectId, options.WithSpecificDiagnosticOptions(specific));
    }

    private static readonly string[] DisabledByDefault =
    {
        ChunkedAttention.Generator.Analysis.DiagnosticDescriptors.DirectCallOutsideProcessorId,
        ChunkedAttention.Generator.Analysis.DiagnosticDescriptors.HandWrittenOutsideProcessorId,
    };

    /// <summary>Adds the product references to a test's state.</summary>
    public static void AddProductReferences(SolutionState state, bool includeRuntime = true)
    {
        state.AdditionalReferences.Add(ProductReferences[0]);
        if (includeRuntime)
        {
            state.AdditionalReferences.Add(ProductReferences[1]);
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (directory.EnumerateFiles("Generators.sln").Any())
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Generators.sln above {AppContext.BaseDirectory}.");
    }
}
