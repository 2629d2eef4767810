using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Kernels;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// <see cref="ChunkedAttentionOptions.TryNativeFirst"/>: native first, chunks after an MPS size error, and the
/// decision remembered per shape. MPS is simulated by a native kernel that fails on more than 4 query rows.
/// </summary>
public class FallbackTests
{
    private const string MpsMessage =
        "failed assertion `[MPSNDArray initWithDevice:descriptor:isTextureBacked:] Error: total bytes of NDArray > 2**32'";

    private static readonly ChunkedAttentionOptions NativeFirst = new() { ChunkSize = 4, Devices = AttentionDevices.All, TryNativeFirst = true };

    private sealed class FlakyNative
    {
        private int _calls;
        private int _failures;

        public FlakyNative(string message = MpsMessage) => Message = message;

        public string Message { get; }
        public int Calls => _calls;
        public int Failures => _failures;

        public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask, double p, bool causal)
        {
            Interlocked.Increment(ref _calls);
            if (q.size(-2) > 4)
            {
                Interlocked.Increment(ref _failures);
                throw new ExternalException(Message);
            }

            return KernelHooks.Default.Native(q, k, v, mask, p, causal);
        }
    }

    private sealed class ExternalException : Exception
    {
        public ExternalException(string message) : base(message) { }
    }

    private static (Tensor Q, Tensor K, Tensor V) Inputs(long l = 10)
    {
        var g = Reference.Seeded(300);
        return (Reference.Randn(g, 2, 3, l, 4), Reference.Randn(g, 2, 3, 9, 4), Reference.Randn(g, 2, 3, 9, 5));
    }

    [Fact]
    public void OffByDefault()
    {
        Assert.False(ChunkedAttentionOptions.Default.TryNativeFirst);
        Assert.False(new ChunkedAttentionAttribute().TryNativeFirst);
    }

    [Fact]
    public void RetriesInChunksAfterAnMpsSizeErrorAndRemembersTheShape()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var recorder = new StepRecorder(native.Run);
        var mask = Reference.Randn(Reference.Seeded(301), 10, 9);

        var first = ChunkedSdpa.RunAttention(q, k, v, mask, 0, true, null, false, NativeFirst, recorder.Hooks);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), first);
        Assert.Equal(1, native.Failures);
        Assert.Equal(1 + 3, native.Calls); // the failed whole call, then 3 chunks of 4, 4, 2 rows
        Assert.Equal(1, recorder.Hooks.FailureCache.Count);

        var second = ChunkedSdpa.RunAttention(q, k, v, mask, 0, true, null, false, NativeFirst, recorder.Hooks);
        Reference.AssertClose(first, second, 0);
        Assert.Equal(1, native.Failures); // no second attempt for a shape that failed
        Assert.Equal(4 + 3, native.Calls);
    }

    [Fact]
    public void ADifferentShapeTriesNativeAgain()
    {
        using var scope = NewDisposeScope();
        var native = new FlakyNative();
        var recorder = new StepRecorder(native.Run);
        var (q, k, v) = Inputs();
        ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, NativeFirst, recorder.Hooks);
        var (q2, k2, v2) = Inputs(l: 12);
        ChunkedSdpa.RunAttention(q2, k2, v2, null, 0, false, null, false, NativeFirst, recorder.Hooks);
        Assert.Equal(2, native.Failures);
        Assert.Equal(2, recorder.Hooks.FailureCache.Count);
    }

    [Fact]
    public void NativeSuccessMeansNoChunking()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(l: 4);
        var recorder = new StepRecorder();
        var options = new ChunkedAttentionOptions { ChunkSize = 2, Devices = AttentionDevices.All, TryNativeFirst = true };
        var result = ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, options, recorder.Hooks);
        Reference.AssertClose(Reference.Native(q, k, v), result);
        Assert.Single(recorder.Steps); // plan says 2 chunks, but native worked
    }

    [Theory]
    [InlineData("Placeholder shape mismatch (4294967296 vs 1)")]
    [InlineData("[MPSNDArray initWithDevice:descriptor:] Error: product of dimension sizes > 2**31")]
    [InlineData("Invalid buffer size: 5.00 GB")]
    public void EveryDocumentedMarkerTriggersTheRetry(string message)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var native = new FlakyNative(message);
        var recorder = new StepRecorder(native.Run);
        var result = ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, NativeFirst, recorder.Hooks);
        Reference.AssertClose(Reference.Native(q, k, v), result);
        Assert.Contains(ChunkedSdpa.NativeFailureMarkers, marker => message.Contains(marker, StringComparison.Ordinal));
    }

    [Fact]
    public void OtherErrorsPropagateAndAreNotRemembered()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative("CUDA out of memory");
        var recorder = new StepRecorder(native.Run);
        var e = Assert.Throws<ExternalException>(() =>
            ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, NativeFirst, recorder.Hooks));
        Assert.Equal("CUDA out of memory", e.Message);
        Assert.Equal(0, recorder.Hooks.FailureCache.Count);
    }

    [Fact]
    public void WithoutTheOptionNativeIsNeverTriedOnChunkingDevices()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var recorder = new StepRecorder(native.Run);
        var options = new ChunkedAttentionOptions { ChunkSize = 4, Devices = AttentionDevices.All };
        ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, options, recorder.Hooks);
        Assert.Equal(0, native.Failures);
    }

    [Fact]
    public void OutsideTheDevicesTheNativeErrorPropagates()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var recorder = new StepRecorder(native.Run);
        var options = new ChunkedAttentionOptions { ChunkSize = 4, Devices = AttentionDevices.Mps, TryNativeFirst = true };
        Assert.Throws<ExternalException>(() => ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, options, recorder.Hooks));
    }

    [Fact]
    public void ConcurrentCallsShareTheCacheSafely()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var recorder = new StepRecorder(native.Run);
        using var expected = Reference.Native(q, k, v);
        var results = new double[16];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var scope = NewDisposeScope();
            results[i] = Reference.MaxAbsDiff(expected,
                ChunkedSdpa.RunAttention(q, k, v, null, 0, false, null, false, NativeFirst, recorder.Hooks));
        });
        Assert.All(results, d => Assert.True(d <= 1e-5));
        Assert.Equal(1, recorder.Hooks.FailureCache.Count);
        Assert.InRange(native.Failures, 1, 4); // at most the calls already in flight before the first failure was recorded
    }
}
