using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using ChunkedAttention.Kernels;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Emit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The generated wrapper at run time: a class compiled in memory with the generator, loaded, and
/// called on small CPU tensors. With <c>Devices = All</c> it chunks and equals native SDPA; with the
/// default devices (MPS only) it does not chunk on the CPU. Which branch the wrapper took is observed
/// through the runtime's seam (<see cref="KernelHooks.Override"/>): the steps the runtime ran and its
/// native calls, none of which happen when the wrapper calls TorchSharp directly.
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
    public void Chunk_branch_on_a_chunking_device_runs_query_chunks_of_ChunkSize_in_the_runtime()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 6);

        (Tensor result, Observed seen) = Observe(() => Load("AllDevices")(q, k, v, null, false, null));

        Assert.Equal(new long[] { 0, 4, 8 }, seen.Steps.Select(step => step.QueryStart));
        Assert.Equal(new long[] { 4, 4, 2 }, seen.Steps.Select(step => step.QueryRows));
        Assert.All(seen.Steps, step => Assert.Equal(Keys, step.KeyRows));
        Assert.Equal(3, seen.NativeCalls);
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v), result);
    }

    [Fact]
    public void TorchSharp_branch_off_the_chunking_devices_does_not_enter_the_runtime()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 7);
        Tensor mask = Mask(seed: 7);

        (Tensor result, Observed seen) = Observe(() => Load("DefaultDevices")(q, k, v, mask, false, null));

        Assert.Empty(seen.Steps);
        Assert.Equal(0, seen.NativeCalls);
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask), result);
    }

    [Fact]
    public void Runtime_native_branch_off_the_chunking_devices_is_one_unchunked_step()
    {
        // What TorchSharp lacks (here scale, and is_casual with a mask) goes through ChunkedSdpa.Native: one step, whole.
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 8);
        Tensor mask = Mask(seed: 8);
        WrapperCall run = Load("DefaultDevices");

        foreach ((Tensor? stepMask, bool causal, double? scale) in new (Tensor?, bool, double?)[] { (null, false, 0.3), (mask, true, null) })
        {
            (_, Observed seen) = Observe(() => run(q, k, v, stepMask, causal, scale));

            // Every query row at once (a causal call may see fewer keys than S, never more).
            AttentionStep step = Assert.Single(seen.Steps);
            Assert.Equal((0L, (long)Rows, 0L), (step.QueryStart, step.QueryRows, step.KeyStart));
            Assert.InRange(step.KeyRows, 1, Keys);
            Assert.Equal(1, seen.NativeCalls);
        }
    }

    [Fact]
    public void Wrapper_options_tell_the_runtime_to_skip_the_device_check()
    {
        Assert.True(Options("AllDevices").SkipDeviceCheck);
        Assert.True(Options("DefaultDevices").SkipDeviceCheck);
    }

    [Fact]
    public void All_devices_chunks_on_cpu_and_matches_native()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 1);

        Assert.True(ChunkedSdpa.ShouldChunk(q, k, Options("AllDevices")));
        AssertClose(nn.functional.scaled_dot_product_attention(q, k, v), Load("AllDevices")(q, k, v, null, false, null));
    }

    [Fact]
    public void All_devices_with_mask_and_causal_matches_native()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 2);
        Tensor mask = Mask(seed: 2);

        WrapperCall run = Load("AllDevices");
        AssertMaskAndCausalEachMatchNative(run, q, k, v, mask);
        AssertCausalWithMaskMatchesNative(run, q, k, v, mask);
    }

    [Fact]
    public void All_devices_with_scale_matches_native_on_rescaled_query()
    {
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 3);

        AssertScaleMatchesNative(Load("AllDevices"), q, k, v, scale: 0.2);
    }

    [Fact]
    public void Default_devices_take_the_native_path_on_cpu()
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
    public void Default_devices_still_apply_what_TorchSharp_lacks()
    {
        // Not chunked, but scale and is_casual with a mask go through the runtime's unchunked path.
        using var scope = NewDisposeScope();
        (Tensor q, Tensor k, Tensor v) = Inputs(seed: 5);
        Tensor mask = Mask(seed: 5);

        WrapperCall run = Load("DefaultDevices");
        AssertCausalWithMaskMatchesNative(run, q, k, v, mask);
        AssertScaleMatchesNative(run, q, k, v, scale: 0.3);
    }

    // Runs a wrapper call with the runtime's hooks replaced by recording ones (the default native SDPA underneath).
    private static (Tensor Result, Observed Seen) Observe(Func<Tensor> call)
    {
        var seen = new Observed();
        var hooks = new KernelHooks
        {
            OnStep = seen.Steps.Add,
            Native = (q, k, v, mask, p, causal) =>
            {
                seen.NativeCalls++;
                return KernelHooks.Default.Native(q, k, v, mask, p, causal);
            },
        };
        using (KernelHooks.Override(hooks))
        {
            return (call(), seen);
        }
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

    private sealed class Observed
    {
        public List<AttentionStep> Steps { get; } = new();

        public int NativeCalls { get; set; }
    }
}
