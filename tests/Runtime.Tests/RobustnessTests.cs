using System;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Runtime.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>Edge inputs (NaN/Inf, empty dims, huge settings) and thread safety.</summary>
public class RobustnessTests
{
    private static (Tensor Q, Tensor K, Tensor V) Inputs(long seed, long l = 7, long s = 9)
    {
        var g = Reference.Seeded(seed);
        return (Reference.Randn(g, 2, 3, l, 4), Reference.Randn(g, 2, 3, s, 4), Reference.Randn(g, 2, 3, s, 5));
    }

    private static Tensor Chunked(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false, int keyChunk = 0) =>
        ChunkedSdpa.Chunked(q, k, v, mask, is_causal: causal,
            options: new ChunkedAttentionOptions { ChunkSize = 3, KeyChunkSize = keyChunk });

    /// <summary>Same NaN and infinity positions, same values elsewhere.</summary>
    private static void AssertSameIncludingNaN(Tensor expected, Tensor actual)
    {
        Assert.True(expected.isnan().eq(actual.isnan()).all().item<bool>(), "NaN positions differ from native");
        Assert.True(expected.isposinf().eq(actual.isposinf()).all().item<bool>(), "+inf positions differ from native");
        Assert.True(expected.isneginf().eq(actual.isneginf()).all().item<bool>(), "-inf positions differ from native");
        var finite = expected.isfinite();
        Reference.AssertClose(expected.masked_select(finite), actual.masked_select(finite));
    }

    [Theory]
    [InlineData("value", 0)]
    [InlineData("key", 0)]
    [InlineData("query", 0)]
    [InlineData("value", 4)]
    [InlineData("key", 4)]
    public void NaNPropagatesAsNative(string where, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(400);
        var target = where switch { "query" => q, "key" => k, _ => v };
        target[0, 1, 2, 3] = tensor(float.NaN);
        AssertSameIncludingNaN(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
        var mask = Reference.Randn(Reference.Seeded(401), 7, 9);
        AssertSameIncludingNaN(Reference.Native(q, k, v, mask), Chunked(q, k, v, mask, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void NaNInAQueryRowStaysInThatRow(int keyChunk)
    {
        // Native's fused CPU kernel turns a NaN query row into zeros, its math kernel into NaN; either way the
        // other rows are untouched. The key-block kernel gives NaN (it never hides a NaN).
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(402);
        q[0, 1, 2, 3] = tensor(float.NaN);
        var expected = Reference.Native(q, k, v, causal: true);
        var actual = Chunked(q, k, v, causal: true, keyChunk: keyChunk);
        var row = actual[0, 1, 2];
        Assert.True(row.isnan().all().item<bool>() || row.eq(0).all().item<bool>());
        var others = ones(actual.shape, ScalarType.Bool);
        others[0, 1, 2] = tensor(false);
        Reference.AssertClose(expected.masked_select(others), actual.masked_select(others));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void InfinityPropagatesAsNative(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(403);
        k[1, 0, 4, 0] = tensor(float.PositiveInfinity);
        v[0, 2, 1, 1] = tensor(float.NegativeInfinity);
        var mask = Reference.Randn(Reference.Seeded(404), 7, 9);
        AssertSameIncludingNaN(Reference.Native(q, k, v, mask), Chunked(q, k, v, mask, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(0, false, 0)]
    [InlineData(0, true, 0)]
    [InlineData(0, false, 4)]
    [InlineData(0, true, 4)]
    public void ZeroLengthQueryAsNative(long l, bool causal, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(405, l: l);
        var expected = Reference.Native(q, k, v, causal: causal);
        var actual = Chunked(q, k, v, causal: causal, keyChunk: keyChunk);
        Assert.Equal(new long[] { 2, 3, 0, 5 }, actual.shape);
        Reference.AssertClose(expected, actual);
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 4)]
    [InlineData(true, 4)]
    public void ZeroLengthKeysGiveZerosAsNative(bool causal, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(406, s: 0);
        var expected = Reference.Native(q, k, v, causal: causal);
        var actual = Chunked(q, k, v, causal: causal, keyChunk: keyChunk);
        Reference.AssertClose(expected, actual);
        Assert.Equal(0f, actual.abs().max().item<float>());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void ZeroHeadDimAsNative(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(407);
        var (q, k, v) = (Reference.Randn(g, 2, 3, 7, 0), Reference.Randn(g, 2, 3, 9, 0), Reference.Randn(g, 2, 3, 9, 5));
        Reference.AssertClose(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
        Reference.AssertClose(Reference.Native(q, k, v, scale: 0.5), ChunkedSdpa.Chunked(q, k, v, scale: 0.5,
            options: new ChunkedAttentionOptions { ChunkSize = 3, KeyChunkSize = keyChunk }));
    }

    [Fact]
    public void HugeSettingsWork()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(408);
        var options = new ChunkedAttentionOptions
        {
            ChunkSize = int.MaxValue, KeyChunkSize = int.MaxValue, MaxScoreElements = long.MaxValue, Devices = AttentionDevices.All,
        };
        Reference.AssertClose(Reference.Native(q, k, v, causal: true), ChunkedSdpa.Chunked(q, k, v, is_causal: true, options: options));
        Reference.AssertClose(Reference.Native(q, k, v), ChunkedSdpa.Attention(q, k, v, options: options));
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));
    }

    [Fact]
    public void OptionsAreImmutable()
    {
        foreach (var property in typeof(ChunkedAttentionOptions).GetProperties())
        {
            var setter = property.SetMethod;
            Assert.True(setter is null || Array.IndexOf(setter.ReturnParameter.GetRequiredCustomModifiers(),
                typeof(System.Runtime.CompilerServices.IsExternalInit)) >= 0, $"{property.Name} has a public setter");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void ConcurrentCallsOnSharedInputsMatchASingleThread(int keyChunk)
    {
        var (q, k, v) = Inputs(409, l: 16, s: 16);
        var mask = Reference.Randn(Reference.Seeded(410), 2, 1, 16, 16);
        using var single = Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk);
        var identical = new bool[2 * 25];
        var threads = new Thread[2];
        for (var t = 0; t < threads.Length; t++)
        {
            var offset = t * 25;
            threads[t] = new Thread(() =>
            {
                for (var i = 0; i < 25; i++)
                {
                    using var scope = NewDisposeScope();
                    identical[offset + i] = single.eq(Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk)).all().item<bool>();
                }
            });
            threads[t].Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        Assert.All(identical, Assert.True);
    }
}
