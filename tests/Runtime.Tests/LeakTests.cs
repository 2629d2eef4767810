using System;
using System.Diagnostics;
using System.Threading;
using ChunkedAttention.Runtime.Tests.Support;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// No native tensor outlives a call: TorchSharp's per-thread live tensor count
/// (<see cref="DisposeScopeManager.Statistics"/>) is back where it started after thousands of calls, and
/// process memory stays flat. Runs alone so other tests do not disturb the memory figure.
/// </summary>
[Collection(EnvironmentCollection.Name)]
public class LeakTests
{
    private readonly ITestOutputHelper _output;

    public LeakTests(ITestOutputHelper output) => _output = output;

    private static long LiveTensors => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    public static TheoryData<string> Paths() => new() { "query chunks", "key blocks", "native path", "native first, then chunks" };

    private static Func<Tensor> Call(string path, Tensor q, Tensor k, Tensor v, Tensor mask) => path switch
    {
        "query chunks" => () => ChunkedSdpa.Chunked(q, k, v, mask, is_causal: true, scale: 0.5, enable_gqa: true,
            options: new ChunkedAttentionOptions { ChunkSize = 2 }),
        "key blocks" => () => ChunkedSdpa.Chunked(q, k, v, mask, is_causal: true, scale: 0.5, enable_gqa: true,
            options: new ChunkedAttentionOptions { ChunkSize = 2, KeyChunkSize = 2 }),
        "native path" => () => ChunkedSdpa.Attention(q, k, v, mask, is_causal: true, scale: 0.5, enable_gqa: true),
        _ => NativeFirstThatFails(q, k, v, mask),
    };

    private static Func<Tensor> NativeFirstThatFails(Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        var recorder = new StepRecorder((a, b, c, m, p, causal) =>
            a.size(-2) > 2 ? throw new InvalidOperationException("MPSNDArray: total bytes of NDArray > 2**32") : nn.functional.scaled_dot_product_attention(a, b, c, m, p, causal));
        var options = new ChunkedAttentionOptions { ChunkSize = 2, Devices = AttentionDevices.All, TryNativeFirst = true };
        // A fresh cache per call would grow; instead the first call fails and later ones go straight to chunks.
        return () => recorder.Attention(q, k, v, options, mask, causal: true, scale: 0.5, gqa: true);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void TenThousandCallsLeaveNoLiveTensor(string path)
    {
        using var inputs = AttentionInputs.Random(500, l: 4, s: 4, hq: 2, hkv: 1, batch: 1, ev: 3);
        var (q, k, v) = inputs;
        using var mask = Reference.Randn(Reference.Seeded(503), 4, 4);
        var call = Call(path, q, k, v, mask);

        for (var i = 0; i < 100; i++)
        {
            call().Dispose();
        }

        var before = LiveTensors;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 10_000; i++)
        {
            call().Dispose();
        }

        _output.WriteLine($"{path}: 10,000 calls in {watch.ElapsedMilliseconds} ms; live tensors {before} -> {LiveTensors}");
        Assert.Equal(before, LiveTensors);
    }

    [Fact]
    public void ProcessMemoryStaysFlatAfterWarmUp()
    {
        using var inputs = AttentionInputs.Random(501, l: 128, s: 128, hq: 2, e: 32, ev: 32);
        var (q, k, v) = inputs;
        var options = new ChunkedAttentionOptions { ChunkSize = 32, KeyChunkSize = 32 };

        void Run(int calls)
        {
            for (var i = 0; i < calls; i++)
            {
                ChunkedSdpa.Chunked(q, k, v, is_causal: true, options: options).Dispose();
            }
        }

        Run(1_000);
        GC.Collect();
        var warm = Environment.WorkingSet;
        Run(3_000);
        GC.Collect();
        var after = Environment.WorkingSet;
        _output.WriteLine($"working set after warm-up {warm >> 20} MiB, after 3,000 more calls {after >> 20} MiB");
        // Each call returns 64 KiB and allocates far more inside; leaking even the outputs would add ~190 MiB.
        Assert.True(after - warm < 48L << 20, $"working set grew by {(after - warm) >> 20} MiB");
    }

    [Fact]
    public void EnvironmentChangesWhileCallsRunAreReadSafely()
    {
        using var inputs = AttentionInputs.Random(502, l: 12, s: 12);
        var (q, k, v) = inputs;
        using var expected = Reference.Native(q, k, v, causal: true);
        // Both saved before the toggler starts, so the dispose restores the values from before this test.
        using var env = new EnvironmentScope().Set(EnvironmentScope.ChunkSize, "3").Set(EnvironmentScope.Mode, "auto");

        using var stop = new CancellationTokenSource();
        var toggler = new Thread(() =>
        {
            var flip = false;
            while (!stop.IsCancellationRequested)
            {
                Environment.SetEnvironmentVariable(EnvironmentScope.ChunkSize, (flip = !flip) ? "2" : "5");
                Environment.SetEnvironmentVariable(EnvironmentScope.Mode, flip ? "always" : "auto");
            }
        });
        toggler.Start();

        var worst = 0.0;
        try
        {
            for (var i = 0; i < 300; i++)
            {
                using var scope = NewDisposeScope();
                worst = Math.Max(worst, Reference.MaxAbsDiff(expected, ChunkedSdpa.Attention(q, k, v, is_causal: true)));
                worst = Math.Max(worst, Reference.MaxAbsDiff(expected, ChunkedSdpa.Chunked(q, k, v, is_causal: true)));
            }
        }
        finally
        {
            stop.Cancel();
            toggler.Join();
        }

        Assert.True(worst <= 1e-5, $"max abs diff {worst}");
    }
}
