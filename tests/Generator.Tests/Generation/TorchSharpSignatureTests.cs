using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The wrapper mirrors whatever <c>scaled_dot_product_attention</c> the referenced TorchSharp
/// declares. These compile against stand-ins of a later TorchSharp (see <see cref="StubSources"/>)
/// and check the generated file in full, plus a clean build with a call site using every name.
/// </summary>
public sealed class TorchSharpSignatureTests
{
    [Fact]
    public void TorchSharp_with_PyTorch_parameters_is_mirrored_without_duplicates()
    {
        // A TorchSharp that fixed is_casual and gained scale/enable_gqa: nothing is appended, and only
        // is_causal with a mask still goes through the runtime.
        Verify(
            "TorchSharpWithPyTorchParameters",
            ", Tensor? attn_mask = null, double dropout_p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false",
            "ChunkedScaledDotProductAttention(q, k, v, attn_mask: null, dropout_p: 0.1, is_causal: true, scale: 0.5, enable_gqa: true)");
    }

    [Fact]
    public void Unknown_parameters_are_forwarded_and_keep_the_call_native()
    {
        Verify(
            "TorchSharpWithUnknownParameters",
            ", Tensor? attn_mask = null, double p = 0.0, bool is_casual = false, int window = -1, "
                + "System.StringComparison mode = System.StringComparison.Ordinal, string? backend = null, Tensor? bias = null",
            "ChunkedScaledDotProductAttention(q, k, v, window: 16, mode: System.StringComparison.InvariantCulture, backend: \"math\", bias: q, scale: 2.0)");
    }

    [Fact]
    public void Unknown_parameter_without_comparable_default_makes_the_wrapper_native()
    {
        Verify(
            "TorchSharpWithUnmappableParameter",
            ", System.TimeSpan timeout, Tensor? attn_mask = null, double p = 0.0, bool is_casual = false",
            "ChunkedScaledDotProductAttention(q, k, v, System.TimeSpan.Zero, enable_gqa: false)");
    }

    private static void Verify(string snapshot, string sdpaParameters, string call)
    {
        string source = StubSources.TorchSharp(sdpaParameters) + StubSources.Runtime + """
            namespace Models
            {
                using TorchSharp;

                [ChunkedAttention.ChunkedAttention]
                public partial class Attention
                {
                    public static torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>

            """ + "                " + call + ";\n    }\n}\n";

        GeneratorRun run = GeneratorHarness.Run(
            GeneratorHarness.Compile(new[] { source }, references: GeneratorHarness.FrameworkReferences));

        Assert.Null(run.Result.Exception);
        var problems = GeneratorHarness.Problems(run.OutputCompilation);
        Assert.True(problems.IsEmpty, GeneratorHarness.Describe(problems));
        var generated = Assert.Single(run.Result.GeneratedSources);
        Snapshot.Match(snapshot, generated.SourceText.ToString());
    }
}
