using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Tests.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// A code-fix test that runs both ChunkedAttention analyzers and the real source generator, so the
/// fixed code must compile against the generated wrapper with no errors and no remaining
/// ChunkedAttention diagnostics. The framework applies the fix one diagnostic at a time and then
/// through Fix All in document, project and solution, and checks each against the same result.
/// </summary>
internal sealed class CodeFixTest<TCodeFix> : CSharpCodeFixTest<SdpaCallAnalyzer, TCodeFix, DefaultVerifier>
    where TCodeFix : CodeFixProvider, new()
{
    public CodeFixTest()
    {
        ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies;
        RoslynTestSetup.AddProductReferences(TestState);
        SolutionTransforms.Add(RoslynTestSetup.KeepDefaultSeverities);

        // The generated wrapper is verified by the generator's snapshot tests; here it only has to compile.
        TestBehaviors |= TestBehaviors.SkipGeneratedSourcesCheck;

        // Stricter than the default (errors only): the generated wrapper must not add warnings either.
        // Test inputs are small snippets: public members without docs and unused fields are fine there.
        CompilerDiagnostics = CompilerDiagnostics.Warnings;
        DisabledDiagnostics.Add("CS1591");
        DisabledDiagnostics.Add("CS0169");
    }

    /// <summary>The incremental generator of ChunkedAttention.Generator, found by reflection so these tests do not depend on its name.</summary>
    public static Type GeneratorType { get; } = typeof(DiagnosticDescriptors).Assembly.GetTypes()
        .Single(t => !t.IsAbstract && typeof(IIncrementalGenerator).IsAssignableFrom(t) && t.GetCustomAttributes(typeof(GeneratorAttribute), false).Length > 0);

    /// <summary>Adds an .editorconfig to every project of the test (e.g. to raise SDPA005).</summary>
    public CodeFixTest<TCodeFix> WithEditorConfig(string lines)
    {
        TestState.AnalyzerConfigFiles.Add(("/.editorconfig", "root = true\n\n[*.cs]\n" + lines + "\n"));
        return this;
    }

    /// <summary>Adds a file to the test's project: its source, and what the fix makes of it.</summary>
    public CodeFixTest<TCodeFix> WithFile(string path, string source, string fixedSource)
    {
        TestState.Sources.Add((path, source));
        FixedState.Sources.Add((path, fixedSource));
        return this;
    }

    protected override IEnumerable<DiagnosticAnalyzer> GetDiagnosticAnalyzers() =>
        new DiagnosticAnalyzer[] { new SdpaCallAnalyzer(), new ChunkedAttentionAttributeAnalyzer(), new ChunkedAttention.Generator.Analysis.HandWrittenAttention.HandWrittenAttentionAnalyzer() };

    protected override IEnumerable<Type> GetSourceGenerators() => new[] { GeneratorType };

    public static Task VerifyAsync(string source, string fixedSource)
    {
        var test = new CodeFixTest<TCodeFix> { TestCode = source, FixedCode = fixedSource };
        return test.RunAsync();
    }
}
