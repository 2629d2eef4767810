using Microsoft.CodeAnalysis;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Targets that must get no code: the generator skips them silently (the analyzer reports
/// SDPA002/003/006/009), never crashes, and never adds a file that would break the build.
/// </summary>
public sealed class NoCodeTests
{
    [Theory]
    [InlineData("TypeNotPartial", "[ChunkedAttention] public class A { }")]
    [InlineData("ContainerNotPartial", "public class Outer { [ChunkedAttention] public partial class A { } }")]
    [InlineData("OneDeclarationNotPartial", "[ChunkedAttention] public partial class A { } public partial class B { } ")]
    [InlineData("ChunkSizeNegative", "[ChunkedAttention(ChunkSize = -4)] public partial class A { }")]
    [InlineData("KeyChunkSizeNegative", "[ChunkedAttention(KeyChunkSize = -1)] public partial class A { }")]
    [InlineData("MaxScoreElementsNegative", "[ChunkedAttention(MaxScoreElements = -1L)] public partial class A { }")]
    [InlineData("DevicesNone", "[ChunkedAttention(Devices = AttentionDevices.None)] public partial class A { }")]
    [InlineData("MethodNameTaken", "[ChunkedAttention] public partial class A { void ChunkedScaledDotProductAttention() { } }")]
    [InlineData("MethodNameTakenInOtherPart", "[ChunkedAttention] public partial class A { } public partial class A { int ChunkedScaledDotProductAttention => 0; }")]
    [InlineData("FieldNameTaken", "[ChunkedAttention] public partial class A { int ChunkedScaledDotProductAttentionOptions; }")]
    [InlineData("FileLocalType", "[ChunkedAttention] file partial class A { }")]
    [InlineData("NestedInFileLocalType", "file partial class Outer { [ChunkedAttention] public partial class A { } }")]
    [InlineData("WrongArgumentType", "[ChunkedAttention(\"big\")] public partial class A { }")]
    public void Invalid_target_gets_no_code(string name, string declaration)
    {
        string source = "using ChunkedAttention;\nnamespace Models\n{\n    " + declaration + "\n}\n";
        if (name == "OneDeclarationNotPartial")
        {
            // Two declarations of A, one without 'partial'.
            source += "namespace Models { public class A { } }\n";
        }

        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { source }));

        Assert.Empty(run.GeneratorDiagnostics);
        AssertNoCode(run);
    }

    [Fact]
    public void Undefined_device_flags_are_kept_by_value()
    {
        // A flag a newer runtime might define: the generator passes it through, cast, and the result builds.
        const string Source = """
            using ChunkedAttention;
            [ChunkedAttention(Devices = AttentionDevices.Cpu | (AttentionDevices)8)]
            public partial class A { }
            """;

        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { Source }));

        string text = Assert.Single(run.Result.GeneratedSources).SourceText.ToString();
        Assert.Contains("global::ChunkedAttention.AttentionDevices.Cpu | (global::ChunkedAttention.AttentionDevices)(8)", text);
        Assert.Empty(GeneratorHarness.Problems(run.OutputCompilation));
    }

    [Fact]
    public void Attribute_on_two_parts_of_one_type_gets_no_code()
    {
        // Already CS0579; generating twice would collide on the hint name.
        const string Source = """
            using ChunkedAttention;
            [ChunkedAttention] public partial class A { }
            [ChunkedAttention] public partial class A { }
            """;

        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { Source }));

        AssertNoCode(run);
    }

    [Fact]
    public void Compilation_without_TorchSharp_gets_no_code()
    {
        // The runtime's attribute is declared here, so the target binds, but there is no SDPA to mirror.
        const string Source = """
            namespace ChunkedAttention
            {
                [System.AttributeUsage(System.AttributeTargets.Class | System.AttributeTargets.Struct, Inherited = false)]
                public sealed class ChunkedAttentionAttribute : System.Attribute
                {
                    public int ChunkSize { get; set; } = 1024;
                }
            }

            namespace Models
            {
                [ChunkedAttention.ChunkedAttention]
                public partial class A { }
            }
            """;

        GeneratorRun run = RunWithFrameworkOnly(Source);

        AssertNoCode(run);
        Assert.Empty(GeneratorHarness.Problems(run.OutputCompilation));
    }

    [Fact]
    public void TorchSharp_without_SDPA_gets_no_code()
    {
        string source = StubSources.TorchSharp(sdpa: null) + StubSources.Runtime + """
            namespace Models
            {
                [ChunkedAttention.ChunkedAttention]
                public partial class A { }
            }
            """;

        GeneratorRun run = RunWithFrameworkOnly(source);

        AssertNoCode(run);
    }

    [Fact]
    public void Incomplete_source_does_not_crash()
    {
        // Typed half-way: attribute argument missing, type body unterminated.
        const string Source = """
            using ChunkedAttention;
            namespace Models
            {
                [ChunkedAttention(ChunkSize = )]
                public partial class A
                {
                    void M(
            """;

        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { Source }));

        Assert.Null(run.Result.Exception);
        Assert.DoesNotContain(run.GeneratorDiagnostics, d => d.Severity == DiagnosticSeverity.Warning && d.Id == "CS8785");
    }

    // Neither TorchSharp nor the runtime referenced: the sources declare what they need.
    private static GeneratorRun RunWithFrameworkOnly(string source) =>
        GeneratorHarness.Run(GeneratorHarness.Compile(new[] { source }, references: GeneratorHarness.FrameworkReferences));

    // The generator ran without failing and added nothing.
    private static void AssertNoCode(GeneratorRun run)
    {
        Assert.Null(run.Result.Exception);
        Assert.Empty(run.Result.GeneratedSources);
    }
}
