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

    /// <summary>A native SDPA that fails like MPS on more than 4 query rows, with a recorder that calls through it.</summary>
    private sealed class FlakyNative
    {
        private int _calls;
        private int _failures;

        public FlakyNative(string message = MpsMessage)
        {
            Message = message;
            Recorder = new StepRecorder(Run);
        }

        public string Message { get; }
        public StepRecorder Recorder { get; }
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

    private static AttentionInputs Inputs(long l = 10) => AttentionInputs.Random(300, l: l);

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
        var mask = Reference.Randn(Reference.Seeded(301), 10, 9);

        var first = native.Recorder.Attention(q, k, v, NativeFirst, mask, causal: true);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), first);
        Assert.Equal(1, native.Failures);
        Assert.Equal(1 + 3, native.Calls); // the failed whole call, then 3 chunks of 4, 4, 2 rows
        Assert.Equal(1, native.Recorder.FailureCache.Count);

        var second = native.Recorder.Attention(q, k, v, NativeFirst, mask, causal: true);
        Reference.AssertClose(first, second, 0);
        Assert.Equal(1, native.Failures); // no second attempt for a shape that failed
        Assert.Equal(4 + 3, native.Calls);
    }

    [Fact]
    public void ADifferentShapeTriesNativeAgain()
    {
        using var scope = NewDisposeScope();
        var native = new FlakyNative();
        var (q, k, v) = Inputs();
        native.Recorder.Attention(q, k, v, NativeFirst);
        var (q2, k2, v2) = Inputs(l: 12);
        native.Recorder.Attention(q2, k2, v2, NativeFirst);
        Assert.Equal(2, native.Failures);
        Assert.Equal(2, native.Recorder.FailureCache.Count);
    }

    [Fact]
    public void NativeSuccessMeansNoChunking()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(l: 4);
        var recorder = new StepRecorder();
        var options = new ChunkedAttentionOptions { ChunkSize = 2, Devices = AttentionDevices.All, TryNativeFirst = true };
        var result = recorder.Attention(q, k, v, options);
        Reference.AssertClose(Reference.Native(q, k, v), result);
        Assert.Single(recorder.Steps); // plan says 2 chunks, but native worked
    }

    /// <summary>One error text per size limit in docs/mps-limits.md, as MPS words it.</summary>
    private static readonly string[] MpsErrors =
    {
        MpsMessage,
        "failed assertion `[MPSNDArray initWithDevice:descriptor:] Error: product of dimension sizes > 2**31'",
        "Output size of the matrix multiplication is larger than currently supported by the MPS backend: 72250,72250, needs to be less than 2**32 elements.",
        "[MPSNDArrayDescriptor sliceDimension:withSubrange:] error: NDArray dimension length > INT_MAX",
        "RuntimeError: Invalid buffer size: 2.25 GB",
        "Placeholder shape mismatches (expected 1, got 4096 at dim 2)",
    };

    public static TheoryData<string> DocumentedMpsErrors() => new(MpsErrors);

    [Theory]
    [MemberData(nameof(DocumentedMpsErrors))]
    public void EveryDocumentedMpsErrorTriggersTheRetryThroughExactlyOneMarker(string message)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var native = new FlakyNative(message);
        var result = native.Recorder.Attention(q, k, v, NativeFirst);
        Reference.AssertClose(Reference.Native(q, k, v), result);
        Assert.Equal(1, native.Recorder.FailureCache.Count);
        Assert.Single(ChunkedSdpa.NativeFailureMarkers, marker => message.Contains(marker, StringComparison.Ordinal));
    }

    [Fact]
    public void EveryMarkerStandsForADocumentedMpsError()
    {
        Assert.All(ChunkedSdpa.NativeFailureMarkers, marker =>
            Assert.Contains(MpsErrors, message => message.Contains(marker, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("[MPSNDArray initWithDevice:] Error: unsupported data type")]
    [InlineData("NDArray of the wrong rank")]
    [InlineData("Invalid argument: buffer")]
    [InlineData("CUDA out of memory. Tried to allocate 2.00 GiB")]
    public void ErrorsBroaderThanTheSizeLimitsAreNotRetried(string message)
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative(message);
        var e = Assert.Throws<ExternalException>(() => native.Recorder.Attention(q, k, v, NativeFirst));
        Assert.Equal(message, e.Message);
        Assert.Equal(0, native.Recorder.FailureCache.Count);
    }

    [Fact]
    public void OtherErrorsPropagateAndAreNotRemembered()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative("CUDA out of memory");
        var e = Assert.Throws<ExternalException>(() =>
            native.Recorder.Attention(q, k, v, NativeFirst));
        Assert.Equal("CUDA out of memory", e.Message);
        Assert.Equal(0, native.Recorder.FailureCache.Count);
    }

    [Fact]
    public void WithoutTheOptionNativeIsNeverTriedOnChunkingDevices()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var options = new ChunkedAttentionOptions { ChunkSize = 4, Devices = AttentionDevices.All };
        native.Recorder.Attention(q, k, v, options);
        Assert.Equal(0, native.Failures);
    }

    [Fact]
    public void OutsideTheDevicesTheNativeErrorPropagates()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        var options = new ChunkedAttentionOptions { ChunkSize = 4, Devices = AttentionDevices.Mps, TryNativeFirst = true };
        Assert.Throws<ExternalException>(() => native.Recorder.Attention(q, k, v, options));
    }

    [Fact]
    public void ConcurrentCallsShareTheCacheSafely()
    {
        var (q, k, v) = Inputs();
        var native = new FlakyNative();
        using var expected = Reference.Native(q, k, v);
        var results = new double[16];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var scope = NewDisposeScope();
            results[i] = Reference.MaxAbsDiff(expected,
                native.Recorder.Attention(q, k, v, NativeFirst));
        });
        Assert.All(results, d => Assert.True(d <= 1e-5));
        Assert.Equal(1, native.Recorder.FailureCache.Count);
        Assert.InRange(native.Failures, 1, 4); // at most the calls already in flight before the first failure was recorded
    }
}
