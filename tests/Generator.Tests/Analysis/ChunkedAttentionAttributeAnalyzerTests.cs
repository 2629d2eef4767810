using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verify = ChunkedAttention.Generator.Tests.Analysis.AnalyzerVerifier<ChunkedAttention.Generator.Analysis.ChunkedAttentionAttributeAnalyzer>;

namespace ChunkedAttention.Generator.Tests.Analysis;

public class ChunkedAttentionAttributeAnalyzerTests
{
    // ---- SDPA002 ----

    [Fact]
    public async Task Partial_type_in_partial_containers_is_fine()
    {
        await Verify.VerifyAsync("""
            using ChunkedAttention;

            namespace N;

            partial class Outer
            {
                partial struct Middle
                {
                    [ChunkedAttention(ChunkSize = 256, KeyChunkSize = 0, MaxScoreElements = 0, Devices = AttentionDevices.All)]
                    partial record Inner;
                }
            }
            """);
    }

    [Fact]
    public async Task Non_partial_type_is_reported_on_its_identifier()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            [ChunkedAttention]
            public class {|#0:SelfAttention|}
            {
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.NotPartial).WithLocation(0).WithArguments("SelfAttention", "SelfAttention"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Each_non_partial_container_is_reported_once_on_its_own_declaration()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            class {|#0:Outer|}
            {
                partial class Middle
                {
                    static class {|#1:Inner|}
                    {
                        [ChunkedAttention] partial class A { }
                        [ChunkedAttention] partial class B { }
                    }
                }
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.NotPartial).WithLocation(0).WithArguments("Outer", "A"));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.NotPartial).WithLocation(1).WithArguments("Inner", "A"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Unmarked_types_are_never_reported()
    {
        await Verify.VerifyAsync("""
            class Outer
            {
                class Inner { }
            }
            """);
    }

    // ---- SDPA003 ----

    [Theory]
    [InlineData("ChunkSize = -1")]
    [InlineData("ChunkSize = -4")]
    [InlineData("KeyChunkSize = -1")]
    [InlineData("MaxScoreElements = -1L")]
    [InlineData("Devices = AttentionDevices.None")]
    [InlineData("Devices = AttentionDevices.Cpu & AttentionDevices.Mps")]
    [InlineData("Devices = 0")]
    public async Task Invalid_named_setting_is_reported_on_the_argument(string argument)
    {
        await VerifyMarkedTypeAsync($"({{|SDPA003:{argument}|}})");
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("int.MinValue")]
    [InlineData("chunkSize: -1")]
    [InlineData("NegativeSize")]
    public async Task Invalid_positional_chunk_size_is_reported(string argument)
    {
        await VerifyMarkedTypeAsync($"({{|SDPA003:{argument}|}}, Devices = AttentionDevices.All)");
    }

    [Fact]
    public async Task Several_bad_settings_each_get_a_diagnostic_with_a_message_saying_what_to_do()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            [ChunkedAttention({|#0:-3|}, {|#1:KeyChunkSize = -8|}, {|#2:Devices = AttentionDevices.None|})]
            partial class SelfAttention { }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.InvalidSetting).WithLocation(0)
            .WithArguments("SelfAttention", "ChunkSize is -3; it must be 0 (automatic: the fewest equal chunks within the step budget) or positive (query rows per chunk); set 0 or a positive value such as 1024"));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.InvalidSetting).WithLocation(1)
            .WithArguments("SelfAttention", "KeyChunkSize is -8; it must be 0 (keys kept whole) or positive (keys per block); set 0 or a positive value"));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.InvalidSetting).WithLocation(2)
            .WithArguments("SelfAttention", "Devices is None, so chunking would never apply; select at least one of AttentionDevices.Cpu, Cuda or Mps"));
        await test.RunAsync();
    }

    [Theory]
    [InlineData("")]
    [InlineData("()")]
    [InlineData("(1)")]
    [InlineData("(0)")]
    [InlineData("(ChunkSize = 0)")]
    [InlineData("(Size)")]
    [InlineData("(ChunkSize = 1, KeyChunkSize = 0, MaxScoreElements = 0, Devices = AttentionDevices.Mps)")]
    [InlineData("(KeyChunkSize = 128, MaxScoreElements = 1L << 30, Devices = AttentionDevices.Cpu | AttentionDevices.Cuda)")]
    public async Task Valid_settings_are_silent(string arguments)
    {
        await VerifyMarkedTypeAsync(arguments);
    }

    /// <summary>
    /// One partial type marked <c>[ChunkedAttention</c><paramref name="arguments"/><c>]</c>, with constants <c>Size = 0</c>
    /// (automatic chunk size) and <c>NegativeSize = -1</c> to pass.
    /// </summary>
    private static Task VerifyMarkedTypeAsync(string arguments) => Verify.VerifyAsync($$"""
        using ChunkedAttention;

        [ChunkedAttention{{arguments}}]
        partial class SelfAttention
        {
            private const int Size = 0;
            private const int NegativeSize = -1;
        }
        """);

    // ---- SDPA006 ----

    [Fact]
    public async Task Hand_written_member_with_the_wrapper_name_is_reported()
    {
        await Verify.VerifyAsync("""
            using ChunkedAttention;

            [ChunkedAttention]
            partial class SelfAttention
            {
                private int {|SDPA006:ChunkedScaledDotProductAttention|};
            }

            [ChunkedAttention]
            partial class Other
            {
                void {|SDPA006:ChunkedScaledDotProductAttention|}(int x) { }
            }

            [ChunkedAttention]
            partial struct Third
            {
                static object {|SDPA006:ChunkedScaledDotProductAttentionOptions|} => null;
            }
            """);
    }

    [Fact]
    public async Task Name_clash_message_names_the_member()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            [ChunkedAttention]
            partial class SelfAttention
            {
                class {|#0:ChunkedScaledDotProductAttentionOptions|} { }
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.MemberNameClash).WithLocation(0)
            .WithArguments("SelfAttention", "ChunkedScaledDotProductAttentionOptions"));
        await test.RunAsync();
    }

    [Fact]
    public async Task The_generators_own_wrapper_is_not_a_clash()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            [ChunkedAttention]
            partial class SelfAttention
            {
            }

            [ChunkedAttention]
            partial class Marked
            {
                [System.CodeDom.Compiler.GeneratedCode("ChunkedAttention.Generator", "0.1.0")]
                private static void ChunkedScaledDotProductAttention() { }
            }
            """);

        // What the generator adds, in a generated file (no [GeneratedCode] needed to be recognised).
        test.TestState.Sources.Add(("/0/SelfAttention.ChunkedAttention.g.cs", """
            // <auto-generated/>
            partial class SelfAttention
            {
                private static void ChunkedScaledDotProductAttention() { }
            }
            """));
        await test.RunAsync();
    }

    [Fact]
    public async Task Unmarked_type_may_declare_the_name()
    {
        await Verify.VerifyAsync("""
            class SelfAttention
            {
                void ChunkedScaledDotProductAttention() { }
            }
            """);
    }

    // ---- SDPA009 ----

    [Fact]
    public async Task File_local_type_and_types_nested_in_one_are_reported()
    {
        var test = Verify.Create("""
            using ChunkedAttention;

            [ChunkedAttention]
            file partial class {|#0:LocalAttention|}
            {
            }

            file partial class Outer
            {
                [ChunkedAttention(ChunkSize = 256)]
                partial struct {|#1:Inner|}
                {
                }
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.CannotGenerate).WithLocation(0)
            .WithArguments("LocalAttention", DiagnosticDescriptors.FileLocalReason));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.CannotGenerate).WithLocation(1)
            .WithArguments("Inner", DiagnosticDescriptors.FileLocalReason));
        await test.RunAsync();
    }

    [Theory]
    [InlineData(", ref Tensor attn_mask", "parameter 'attn_mask' of TorchSharp's scaled_dot_product_attention is ref, out, in or params, which the wrapper cannot mirror")]
    [InlineData(", params double[] extra", "parameter 'extra' of TorchSharp's scaled_dot_product_attention is ref, out, in or params, which the wrapper cannot mirror")]
    [InlineData(", [System.Runtime.InteropServices.Optional, System.Runtime.CompilerServices.DateTimeConstant(0)] System.DateTime when", "the default of parameter 'when' of TorchSharp's scaled_dot_product_attention has no C# literal the wrapper could restate")]
    public async Task TorchSharp_sdpa_the_generator_cannot_restate_is_reported_on_every_marked_type(string parameters, string reason)
    {
        var test = new Microsoft.CodeAnalysis.CSharp.Testing.CSharpAnalyzerTest<ChunkedAttentionAttributeAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
        };
        test.TestState.Sources.Add(Generation.StubSources.TorchSharp(parameters) + Generation.StubSources.Runtime + """
            namespace Models
            {
                [ChunkedAttention.ChunkedAttention]
                public partial class {|#0:SelfAttention|}
                {
                }
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.CannotGenerate).WithLocation(0).WithArguments(
            "SelfAttention", reason + "; update the ChunkedAttention package, or call ChunkedAttention.ChunkedSdpa.Attention directly"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Marked_type_without_TorchSharp_is_reported()
    {
        var test = new Microsoft.CodeAnalysis.CSharp.Testing.CSharpAnalyzerTest<ChunkedAttentionAttributeAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
        };
        test.TestState.Sources.Add("""
            namespace ChunkedAttention
            {
                [System.AttributeUsage(System.AttributeTargets.Class | System.AttributeTargets.Struct, Inherited = false)]
                public sealed class ChunkedAttentionAttribute : System.Attribute { }
            }

            [ChunkedAttention.ChunkedAttention]
            partial class {|#0:SelfAttention|} { }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.CannotGenerate).WithLocation(0).WithArguments(
            "SelfAttention", "the project does not reference TorchSharp, whose scaled_dot_product_attention the wrapper mirrors; add the TorchSharp package (0.107 or later)"));
        await test.RunAsync();
    }

    [Fact]
    public async Task No_runtime_reference_means_no_work()
    {
        var test = new Microsoft.CodeAnalysis.CSharp.Testing.CSharpAnalyzerTest<ChunkedAttentionAttributeAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
            TestCode = """
                class ChunkedAttentionAttribute : System.Attribute { public int ChunkSize { get; set; } }

                [ChunkedAttention(ChunkSize = 0)]
                class SelfAttention { }
                """,
        };
        await test.RunAsync();
    }
}
