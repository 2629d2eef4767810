using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using ChunkedAttention.Kernels;
using ChunkedAttention.Runtime.Tests.Support;
using ChunkedAttention.Validation;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// Training holds one step at a time: the bytes the process has allocated (glibc's mallinfo2, which sees every
/// libtorch CPU allocation), sampled at each step through the <see cref="KernelHooks"/> seam, do not grow from step to
/// step in forward or backward, and backward's peak stays far below the probability matrix that recorded attention
/// keeps. The same instrument sees that matrix build up when the key-block kernel is recorded by autograd.
/// Runs alone (process-wide figure).
/// </summary>
[Collection(EnvironmentCollection.Name)]
public class TrainingMemoryTests
{
    // B*H = 2, L = S = 512: the probabilities are 2 MiB in Float32; a 128 x 128 step is 128 KiB, 16 steps.
    private const long Heads = 2, Length = 512, HeadDim = 16;
    private const long FullProbabilities = Heads * Length * Length * sizeof(float);
    private const long StepScores = Heads * 128 * 128 * sizeof(float);
    private const long InputGradients = 3 * Heads * Length * HeadDim * sizeof(float);
    private static readonly ChunkedAttentionOptions Steps = new() { ChunkSize = 128, KeyChunkSize = 128 };

    private readonly ITestOutputHelper _output;

    public TrainingMemoryTests(ITestOutputHelper output) => _output = output;

    [SkippableLinuxFact]
    public void BackwardHoldsOneStepAtATime()
    {
        var (forward, backward, baseline) = Measure((q, k, v, hooks) =>
        {
            using var installed = KernelHooks.Override(hooks);
            return ChunkedSdpa.Chunked(q, k, v, options: Steps);
        });

        var forwardGrowth = Rise(forward);
        var backwardGrowth = Rise(backward);
        var backwardPeak = backward.Max() - baseline;
        _output.WriteLine($"steps {forward.Count} + {backward.Count}; growth over forward steps {forwardGrowth / 1024} KiB, " +
            $"over backward steps {backwardGrowth / 1024} KiB, backward above its start {backwardPeak / 1024} KiB; " +
            $"probabilities {FullProbabilities / 1024} KiB");

        Assert.Equal(16, forward.Count);
        Assert.Equal(16, backward.Count);
        // Nothing accumulates from step to step (one step's scores would be 1/16 of the probabilities)...
        Assert.True(forwardGrowth < StepScores, $"forward grew by {forwardGrowth} bytes over its steps");
        Assert.True(backwardGrowth < StepScores, $"backward grew by {backwardGrowth} bytes over its steps");
        // ...and backward holds the input gradients plus a few step-sized temporaries (P, dP, transients).
        Assert.True(backwardPeak <= InputGradients + (4 * StepScores), $"backward held {backwardPeak} bytes above its start");
    }

    [SkippableLinuxFact]
    public void TheInstrumentSeesRecordedProbabilitiesBuildUp()
    {
        // The key-block inference kernel recorded by autograd keeps every block's probabilities for backward.
        var (forward, _, _) = Measure((q, k, v, hooks) =>
        {
            var problem = AttentionValidator.Validate(q, k, v, null, 0, false, null, false);
            return KeyBlockKernel.Run(problem, ChunkedSdpa.Plan(q, k, Steps), hooks);
        });

        var growth = Rise(forward);
        _output.WriteLine($"recorded key blocks: growth over forward steps {growth / 1024} KiB");
        Assert.True(growth > FullProbabilities / 2, $"recorded forward grew by only {growth} bytes");
    }

    /// <summary>The largest increase from any sample to a later one (memory freed meanwhile, e.g. by finalizers, is no rise).</summary>
    private static long Rise(List<long> samples)
    {
        long rise = 0, lowest = long.MaxValue;
        foreach (var sample in samples)
        {
            lowest = Math.Min(lowest, sample);
            rise = Math.Max(rise, sample - lowest);
        }

        return rise;
    }

    [Fact]
    public void TrainingCallsLeaveNoLiveTensor()
    {
        // Forward, backward and the function's node and saved tensors: nothing outlives a step of a training loop.
        using var inputs = AttentionInputs.Random(231, l: 6, s: 6, hq: 2, hkv: 1);
        using var mask = Reference.Randn(Reference.Seeded(232), 6, 6);
        void Step()
        {
            using var scope = NewDisposeScope();
            var q = inputs.Q.clone().requires_grad_(true);
            var m = mask.clone().requires_grad_(true);
            ChunkedSdpa.Chunked(q, inputs.K, inputs.V, m, p: 0.2, is_causal: true, enable_gqa: true,
                options: new ChunkedAttentionOptions { ChunkSize = 2, KeyChunkSize = 4 }).sum().backward();
        }

        for (var i = 0; i < 20; i++)
        {
            Step();
        }

        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 300; i++)
        {
            Step();
        }

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    private delegate Tensor Attention(Tensor q, Tensor k, Tensor v, KernelHooks hooks);

    /// <summary>Allocated bytes at each forward step, at each backward step, and when backward starts (second of two runs).</summary>
    private static (List<long> Forward, List<long> Backward, long Baseline) Measure(Attention attention)
    {
        using var inputs = AttentionInputs.Random(230, l: Length, s: Length, hq: Heads, batch: 1, e: HeadDim, ev: HeadDim);
        var samples = new List<long>();
        var hooks = new KernelHooks { OnStep = _ => samples.Add(AllocatedBytes()) };
        List<long> forward = new(), backward = new();
        long baseline = 0;
        for (var run = 0; run < 2; run++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using var scope = NewDisposeScope();
            var q = inputs.Q.clone().requires_grad_(true);
            var k = inputs.K.clone().requires_grad_(true);
            var v = inputs.V.clone().requires_grad_(true);
            var upstream = ones(1, Heads, Length, HeadDim);
            samples.Clear();
            var output = attention(q, k, v, hooks);
            forward = samples.ToList();
            samples.Clear();
            baseline = AllocatedBytes();
            output.backward(new[] { upstream });
            backward = samples.ToList();
        }

        return (forward, backward, baseline);
    }

    /// <summary>Bytes in use from malloc, heap and mmapped blocks, across all arenas.</summary>
    private static long AllocatedBytes()
    {
        var info = mallinfo2();
        return (long)(info.uordblks + info.hblkhd);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 mallinfo2();

    /// <summary>A fact that runs where glibc's mallinfo2 exists (Linux); elsewhere it is skipped.</summary>
    private sealed class SkippableLinuxFactAttribute : FactAttribute
    {
        public SkippableLinuxFactAttribute()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            {
                Skip = "Allocated bytes are read from glibc's mallinfo2 (Linux only).";
            }
        }
    }
}
