using System;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Emit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The generated wrapper at run time: a class compiled in memory with the generator, loaded, and
/// called on small CPU tensors. With <c>Devices = All</c> it chunks and equals native SDPA; with the
/// default devices (MPS only) it does not chunk on the CPU.
/// </summary>
public sealed class GeneratedWrapperBehaviourTests
{
    private const string Source = """
        using ChunkedAttention;
        using TorchSharp;

        namespace Behaviour
        {
            [ChunkedAttention(ChunkSize = 4, Devices = AttentionDevices.All)]
            public static partial class AllDevices
            {
                public static ChunkedAttentionOptions Options => ChunkedScaledDotProductAttentionOptions;

                public static torch.Tensor Run(torch.Tensor q, torch.Tensor k, torch.Tensor v, torch.Tensor? mask, bool causal, double? scale) =>
                    ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, is_casual: causal, scale: scale);
            }

            [ChunkedAttention(ChunkSize = 4)]
            public static partial class DefaultDevices
            {
                public static ChunkedAttentionOptions Options => ChunkedScaledDotProductAttentionOptions;

                public static torch.Tensor Run(torch.Tensor q, torch.Tensor k, torch.Tensor v, torch.Tensor? mask, bool causal, double? scale) =>
                    ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, is_casual: causal, scale: scale);
            }
        }
        """;

    private delegate Tensor WrapperCall(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal, double? scale);

    private static readonly Lazy<Assembly> Compiled = new(CompileAndLoad);

    // L = 10 query rows with ChunkSize 4: three chunks. S = 12 keys, E = 8, Ev = 6.
    private const int Rows = 10;
    private const int Keys = 12;
    private const int Embedding = 8;

    [Fact]
    public void AllDevicesChunksOnCpuAndMatchesNative()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 1);

        Assert.True(ChunkedSdpa.ShouldChunk(q, k, Options("AllDevices")));
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v), Load("AllDevices")(q, k, v, null, false, null));
    }

    [Fact]
    public void AllDevicesWithMaskAndCausalMatchesNative()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 2);
        Tensor mask = Mask(seed: 2);

        WrapperCall run = Load("AllDevices");
        AssertMaskAndCausalEachMatchNative(run, q, k, v, mask);
        AssertCausalWithMaskMatchesNative(run, q, k, v, mask);
    }

    [Fact]
    public void AllDevicesWithScaleMatchesNativeOnRescaledQuery()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 3);

        AssertScaleMatchesNative(Load("AllDevices"), q, k, v, scale: 0.2);
    }

    [Fact]
    public void DefaultDevicesTakeTheNativePathOnCpu()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 4);
        Tensor mask = Mask(seed: 4);

        ChunkedAttentionOptions options = Options("DefaultDevices");
        Assert.Equal(AttentionDevices.Mps, options.Devices);
        Assert.Equal(4, options.ChunkSize);
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));

        AssertMaskAndCausalEachMatchNative(Load("DefaultDevices"), q, k, v, mask);
    }

    [Fact]
    public void DefaultDevicesStillApplyWhatTorchSharpLacks()
    {
        // Not chunked, but scale and is_casual with a mask go through the runtime's unchunked path.
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 5);
        Tensor mask = Mask(seed: 5);

        WrapperCall run = Load("DefaultDevices");
        AssertCausalWithMaskMatchesNative(run, q, k, v, mask);
        AssertScaleMatchesNative(run, q, k, v, scale: 0.3);
    }

    private static void AssertMaskAndCausalEachMatchNative(WrapperCall run, Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask), run(q, k, v, mask, false, null));
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true), run(q, k, v, null, true, null));
    }

    // TorchSharp refuses is_casual with a mask; the wrapper applies both, as mask AND tril.
    private static void AssertCausalWithMaskMatchesNative(WrapperCall run, Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        Tensor causal = ones(Rows, Keys, dtype: ScalarType.Bool).tril();
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask.logical_and(causal)), run(q, k, v, mask, true, null));
    }

    // Native SDPA scales by 1/sqrt(E); folding the rest into the query gives the reference.
    private static void AssertScaleMatchesNative(WrapperCall run, Tensor q, Tensor k, Tensor v, double scale)
    {
        Tensor reference = nn.functional.scaled_dot_product_attention(q * (scale * Math.Sqrt(Embedding)), k, v);
        AssertClose(reference, run(q, k, v, null, false, scale));
    }

    private static (Tensor Q, Tensor K, Tensor V) Inputs(int seed)
    {
        var generator = new torch.Generator((ulong)seed);
        return (
            randn(new long[] { 2, 3, Rows, Embedding }, generator: generator),
            randn(new long[] { 2, 3, Keys, Embedding }, generator: generator),
            randn(new long[] { 2, 3, Keys, 6 }, generator: generator));
    }

    // Random but never fully masked: the diagonal may always attend.
    private static Tensor Mask(int seed) =>
        rand(new long[] { Rows, Keys }, generator: new torch.Generator((ulong)seed + 100)).gt(0.5).logical_or(eye(Rows, Keys, dtype: ScalarType.Bool));

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        double difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= 1e-5, $"max |difference| = {difference}");
    }

    private static WrapperCall Load(string type) => CompiledType(type).GetMethod("Run")!.CreateDelegate<WrapperCall>();

    private static ChunkedAttentionOptions Options(string type) => (ChunkedAttentionOptions)CompiledType(type).GetProperty("Options")!.GetValue(null)!;

    private static Type CompiledType(string name) => Compiled.Value.GetType("Behaviour." + name, throwOnError: true)!;

    private static Assembly CompileAndLoad()
    {
        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { Source }, assemblyName: "GeneratedWrapperBehaviour"));
        Assert.Equal(2, run.Result.GeneratedSources.Length);

        using var image = new MemoryStream();
        EmitResult emitted = run.OutputCompilation.Emit(image);
        Assert.True(emitted.Success, GeneratorHarness.Describe(emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));

        // References resolve to the TorchSharp and runtime assemblies this test process already loaded.
        return Assembly.Load(image.ToArray());
    }
}
