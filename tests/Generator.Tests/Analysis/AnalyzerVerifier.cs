using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>Runs an analyzer over markup sources (<c>{|SDPA001:name|}</c> marks an expected diagnostic).</summary>
internal static class AnalyzerVerifier<TAnalyzer>
    where TAnalyzer : DiagnosticAnalyzer, new()
{
    public static CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> Create(params string[] sources)
    {
        var test = new CSharpAnalyzerTest<TAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
        };
        RoslynTestSetup.AddProductReferences(test.TestState);
        test.SolutionTransforms.Add(RoslynTestSetup.KeepDefaultSeverities);
        for (var i = 0; i < sources.Length; i++)
        {
            test.TestState.Sources.Add(($"/0/Test{i}.cs", sources[i]));
        }

        return test;
    }

    public static Task VerifyAsync(params string[] sources) => Create(sources).RunAsync();

    /// <summary>Same, with an .editorconfig (e.g. to raise SDPA005).</summary>
    public static Task VerifyWithEditorConfigAsync(string editorConfig, params string[] sources)
    {
        var test = Create(sources);
        test.TestState.AnalyzerConfigFiles.Add(("/.editorconfig", "root = true\n\n[*.cs]\n" + editorConfig + "\n"));
        return test.RunAsync();
    }
}
