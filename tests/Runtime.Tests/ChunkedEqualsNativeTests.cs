using System;
using System.Collections.Generic;
using ChunkedAttention.Runtime.Tests.Support;
using static ChunkedAttention.Runtime.Tests.Support.SmallChunks;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// <see cref="ChunkedSdpa.Chunked"/> against native SDPA computed in the same test, for query chunks only
/// (keyChunk 0) and for query chunks x key blocks (online softmax). Float32: max abs diff &lt;= 1e-5.
/// The table of shapes, masks, causal lengths, scale, GQA and layouts lives in tests/Shared/AttentionCases.cs
/// (run by <see cref="EqualityCaseTests"/> here and by the device check); this class holds what a table row cannot
/// say: layouts of the result, dropout statistics and half-precision error bounds against native.
/// </summary>
public class ChunkedEqualsNativeTests
{
    private const long B = 2, H = 3, L = 7, S = 9, E = 4, Ev = 5;

    public static IEnumerable<object[]> KeyChunks() => new[] { new object[] { 0 }, new object[] { 4 } };

    private static AttentionInputs Inputs(long seed, long l = L, long s = S, long hq = H, long hkv = H,
        ScalarType dtype = ScalarType.Float32) =>
        AttentionInputs.Random(seed, l, s, hq, hkv, B, E, Ev, dtype);

    private static Tensor MakeMask(Generator g, long[] shape, bool isBool) =>
        isBool ? rand(shape, generator: g).gt(0.3) : Reference.Randn(g, shape);

    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 0)]
    [InlineData(true, 4)]
    [InlineData(false, 4)]
    public void FullyMaskedRowsGiveZerosAsNative(bool isBool, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(13);
        var mask = isBool ? ones(new[] { L, S }, ScalarType.Bool) : zeros(L, S);
        foreach (var row in new long[] { 0, 3, 6 })
        {
            mask[row] = isBool ? tensor(false) : tensor(float.NegativeInfinity);
        }

        var expected = Reference.Native(q, k, v, mask);
        var actual = Chunked(q, k, v, mask, keyChunk: keyChunk);
        Reference.AssertClose(expected, actual);
        Assert.Equal(0.0, actual[.., .., 3].abs().max().item<float>());
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void TransposedViews(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(18);
        // The usual (B, L, H, E) projection output viewed as (B, H, L, E): not contiguous.
        var q = Reference.Randn(g, B, L, H * E).view(B, L, H, E).transpose(1, 2);
        var k = Reference.Randn(g, B, S, H * E).view(B, S, H, E).transpose(1, 2);
        var v = Reference.Randn(g, B, S, H * Ev).view(B, S, H, Ev).transpose(1, 2);
        Assert.False(q.is_contiguous());
        var mask = MakeMask(g, new long[] { B, 1, L, S }, isBool: true);
        var expected = Reference.Native(q, k, v, mask, causal: true);
        var actual = Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk);
        Reference.AssertClose(expected, actual);

        // Laid out in memory as native lays out its result: its fused kernel follows the query, (B, L, H, Ev),
        // so that the caller's transpose(1, 2).reshape(B, L, H*Ev) is free.
        var plainNative = Reference.Native(q, k, v);
        var plainChunked = Chunked(q, k, v, keyChunk: keyChunk);
        Reference.AssertClose(plainNative, plainChunked);
        if (keyChunk == 0)
        {
            Assert.Equal(plainNative.stride(), plainChunked.stride()); // whichever layout native's path picks

            // Joined by one cat (as on accelerators) the result keeps that layout too.
            using var hooks = ChunkedAttention.Kernels.KernelHooks.Override(
                new ChunkedAttention.Kernels.KernelHooks { CopyChunksAsTheyCome = false });
            var joined = Chunked(q, k, v, keyChunk: keyChunk);
            Reference.AssertClose(plainNative, joined);
            Assert.Equal(plainNative.stride(), joined.stride());
        }
        else
        {
            Assert.True(plainChunked.transpose(1, 2).is_contiguous()); // the key-block kernel follows the query
        }
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 0)]
    [InlineData(ScalarType.BFloat16, 4)]
    [InlineData(ScalarType.Float16, 0)]
    [InlineData(ScalarType.Float16, 4)]
    public void HalfPrecisionWithinTolerance(ScalarType dtype, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(19, dtype: dtype);
        var mask = MakeMask(Reference.Seeded(20), new long[] { L, S }, isBool: true);
        var native = Reference.Native(q, k, v, mask, causal: true);
        var actual = Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk);

        // Documented tolerance (values here are below 4 in magnitude): query chunks are native's own calls, within one
        // unit in the last place of native and no further from the exact Float32 result than native plus half an ulp.
        // Key blocks run q·kᵀ and p·v in the half dtype (scores rounded to it, as PyTorch's math backend does):
        // within two ulps of native and native's error plus one and a half ulps.
        var ulp = dtype == ScalarType.BFloat16 ? 1.0 / 64 : 1.0 / 512;
        var blocks = keyChunk > 0 ? 2.0 : 1.0;
        Reference.AssertClose(native, actual, blocks * ulp);
        var exact = Reference.Native(q.to(ScalarType.Float32), k.to(ScalarType.Float32), v.to(ScalarType.Float32), mask, causal: true);
        var nativeError = Reference.MaxAbsDiff(exact, native.to(ScalarType.Float32));
        var error = Reference.MaxAbsDiff(exact, actual.to(ScalarType.Float32));
        Assert.True(error <= nativeError + ((blocks - 0.5) * ulp), $"error {error:G3} vs native's {nativeError:G3}");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 0)]
    [InlineData(ScalarType.Float16, 4)]
    public void HalfPrecisionFloatMaskOfQueryDtypeWithCausal(ScalarType dtype, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(28, dtype: dtype);
        var mask = MakeMask(Reference.Seeded(29), new long[] { B, 1, L, S }, isBool: false).to(dtype);
        var ulp = dtype == ScalarType.BFloat16 ? 1.0 / 64 : 1.0 / 512;
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk),
            keyChunk > 0 ? 2 * ulp : ulp);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void DropoutChangesEachDrawButKeepsTheExpectedValue(int keyChunk)
    {
        DropoutStatistics(keyChunk);
    }

    [Fact]
    public void DropoutThroughTheTwoPassKeyBlockKernel()
    {
        using var hooks = ChunkedAttention.Kernels.KernelHooks.Override(new ChunkedAttention.Kernels.KernelHooks { KeyBlockPasses = 2 });
        DropoutStatistics(keyChunk: 4);
    }

    private static void DropoutStatistics(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(24);
        var plain = Chunked(q, k, v, keyChunk: keyChunk);
        Reference.AssertClose(Reference.Native(q, k, v), plain);
        Reference.AssertClose(plain, Chunked(q, k, v, p: 0.0, keyChunk: keyChunk), 0);

        manual_seed(25);
        var dropped = Chunked(q, k, v, p: 0.5, keyChunk: keyChunk);
        Assert.True(Reference.MaxAbsDiff(plain, dropped) > 1e-3);
        Assert.True(dropped.isfinite().all().item<bool>());

        // dropout(softmax)·V is unbiased: averaged over many draws it approaches the plain result.
        manual_seed(27);
        var sum = zeros_like(plain);
        const int draws = 400;
        for (var i = 0; i < draws; i++)
        {
            using var inner = NewDisposeScope();
            sum.add_(Chunked(q, k, v, p: 0.3, keyChunk: keyChunk));
        }

        Assert.True(Reference.MaxAbsDiff(plain, sum / draws) < 0.15);
    }
}
