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
/// </summary>
public class ChunkedEqualsNativeTests
{
    private const long B = 2, H = 3, L = 7, S = 9, E = 4, Ev = 5;

    public static IEnumerable<object[]> KeyChunks() => new[] { new object[] { 0 }, new object[] { 4 } };

    private static AttentionInputs Inputs(long seed, long l = L, long s = S, long hq = H, long hkv = H,
        ScalarType dtype = ScalarType.Float32) =>
        AttentionInputs.Random(seed, l, s, hq, hkv, B, E, Ev, dtype);

    public static IEnumerable<object[]> MaskCases()
    {
        var shapes = new[]
        {
            new long[] { L, S }, new long[] { 1, S }, new long[] { L, 1 },
            new long[] { H, L, S }, new long[] { 1, L, S }, new long[] { H, 1, S },
            new long[] { B, H, L, S }, new long[] { B, 1, L, S }, new long[] { 1, H, 1, S }, new long[] { B, 1, 1, S },
            new long[] { B, 1, L, 1 }, new long[] { 1, 1, 1, 1 },
        };
        foreach (var shape in shapes)
        {
            foreach (var isBool in new[] { true, false })
            {
                foreach (var keyChunk in new[] { 0, 4 })
                {
                    yield return new object[] { string.Join("x", shape), isBool, keyChunk };
                }
            }
        }
    }

    private static Tensor MakeMask(Generator g, long[] shape, bool isBool) =>
        isBool ? rand(shape, generator: g).gt(0.3) : Reference.Randn(g, shape);

    private static long[] ParseShape(string text) => Array.ConvertAll(text.Split('x'), long.Parse);

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void MaskOfAnyBroadcastingRankAndKind(string shape, bool isBool, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(1);
        var mask = MakeMask(Reference.Seeded(2), ParseShape(shape), isBool);
        Reference.AssertClose(Reference.Native(q, k, v, mask), Chunked(q, k, v, mask, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(8, 8, 3, 0)]
    [InlineData(8, 8, 4, 0)]
    [InlineData(5, 9, 2, 0)]
    [InlineData(9, 5, 2, 0)]
    [InlineData(9, 5, 4, 0)]
    [InlineData(6, 13, 4, 0)]
    [InlineData(13, 6, 5, 0)]
    [InlineData(8, 8, 1, 0)]
    [InlineData(8, 8, 8, 0)]
    [InlineData(8, 8, 100, 0)]
    [InlineData(8, 8, 3, 3)]
    [InlineData(5, 9, 2, 4)]
    [InlineData(9, 5, 4, 2)]
    [InlineData(6, 13, 4, 5)]
    [InlineData(13, 6, 5, 1)]
    [InlineData(8, 8, 1, 3)]
    [InlineData(8, 8, 100, 3)]
    public void CausalWithAnyLengthsAndChunks(int l, int s, int chunk, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(3, l, s);
        Reference.AssertClose(Reference.Native(q, k, v, causal: true),
            Chunked(q, k, v, causal: true, chunk: chunk, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData("7x9", true, 0)]
    [InlineData("7x9", false, 0)]
    [InlineData("2x1x7x9", true, 0)]
    [InlineData("2x1x7x9", false, 0)]
    [InlineData("1x9", true, 0)]
    [InlineData("1x9", false, 0)]
    [InlineData("3x1x9", false, 0)]
    [InlineData("7x9", true, 4)]
    [InlineData("2x1x7x9", false, 4)]
    [InlineData("1x9", false, 2)]
    [InlineData("3x1x9", true, 4)]
    public void CausalAndMaskBothApply(string shape, bool isBool, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(4);
        var mask = MakeMask(Reference.Seeded(5), ParseShape(shape), isBool);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true),
            Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk));
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void CausalAndMaskWithMoreQueriesThanKeys(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(6, l: 11, s: 5);
        var mask = MakeMask(Reference.Seeded(7), new long[] { B, 1, 11, 5 }, isBool: false);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true),
            Chunked(q, k, v, mask, causal: true, chunk: 4, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(0.3, false, 0)]
    [InlineData(1.7, true, 0)]
    [InlineData(0.3, false, 4)]
    [InlineData(1.7, true, 4)]
    public void ExplicitScale(double scale, bool causalAndMask, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(8);
        var mask = causalAndMask ? MakeMask(Reference.Seeded(9), new long[] { L, S }, isBool: false) : null;
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: causalAndMask, scale: scale),
            Chunked(q, k, v, mask, causal: causalAndMask, scale: scale, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(6, 2, false, 0)]
    [InlineData(6, 3, false, 0)]
    [InlineData(6, 1, false, 0)]
    [InlineData(6, 6, false, 0)]
    [InlineData(6, 2, true, 0)]
    [InlineData(6, 2, false, 4)]
    [InlineData(6, 1, true, 4)]
    [InlineData(6, 3, true, 2)]
    public void GroupedQueryAttention(int hq, int hkv, bool causalMaskScale, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(10, hq: hq, hkv: hkv);
        var mask = causalMaskScale ? MakeMask(Reference.Seeded(11), new long[] { B, hq, L, S }, isBool: true) : null;
        double? scale = causalMaskScale ? 0.5 : null;
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: causalMaskScale, scale: scale, gqa: true),
            Chunked(q, k, v, mask, causal: causalMaskScale, scale: scale, gqa: true, keyChunk: keyChunk));
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void SingleKeyValueHeadBroadcastsWithoutGqaAsNative(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(12, hq: 4, hkv: 1);
        Reference.AssertClose(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
    }

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
    [InlineData(true)]
    [InlineData(false)]
    public void FullyMaskedKeyBlocksContributeNothing(bool isBool)
    {
        // Keys 0..3 (the whole first block of 4) and 8 are hidden from every row: the first block's max is -inf,
        // which must neither give 0/0 nor disturb the later blocks.
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(30);
        var mask = isBool ? ones(new[] { L, S }, ScalarType.Bool) : zeros(L, S);
        foreach (var key in new long[] { 0, 1, 2, 3, 8 })
        {
            mask[.., key] = isBool ? tensor(false) : tensor(float.NegativeInfinity);
        }

        var actual = Chunked(q, k, v, mask, keyChunk: 4);
        Assert.True(actual.isfinite().all().item<bool>());
        Reference.AssertClose(Reference.Native(q, k, v, mask), actual);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void ThreeDimensionalInputs(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(14);
        var (q, k, v) = (Reference.Randn(g, H, L, E), Reference.Randn(g, H, S, E), Reference.Randn(g, H, S, Ev));
        var mask = MakeMask(g, new long[] { L, S }, isBool: true);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk));
        Reference.AssertClose(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void TwoDimensionalInputs(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(15);
        var (q, k, v) = (Reference.Randn(g, L, E), Reference.Randn(g, S, E), Reference.Randn(g, S, Ev));
        Reference.AssertClose(Reference.Native(q, k, v, causal: true), Chunked(q, k, v, causal: true, keyChunk: keyChunk));
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void FiveDimensionalInputsWithMask(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(16);
        var (q, k, v) = (Reference.Randn(g, 2, 2, H, L, E), Reference.Randn(g, 2, 2, H, S, E), Reference.Randn(g, 2, 2, H, S, Ev));
        var mask = MakeMask(g, new long[] { 2, 1, 1, L, S }, isBool: false);
        Reference.AssertClose(Reference.Native(q, k, v, mask), Chunked(q, k, v, mask, keyChunk: keyChunk));
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk));
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void BroadcastBatchDimsAsNative(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(17);
        var (q, k, v) = (Reference.Randn(g, B, H, L, E), Reference.Randn(g, 1, H, S, E), Reference.Randn(g, H, S, Ev));
        var expected = Reference.Native(q, k, v);
        Assert.Equal(new[] { B, H, L, Ev }, expected.shape);
        Reference.AssertClose(expected, Chunked(q, k, v, keyChunk: keyChunk));
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

        // Documented tolerance: within one unit in the last place of native (values here are below 4 in magnitude),
        // and no further from the exact Float32 result than native itself is (plus half an ulp).
        var ulp = dtype == ScalarType.BFloat16 ? 1.0 / 64 : 1.0 / 512;
        Reference.AssertClose(native, actual, ulp);
        var exact = Reference.Native(q.to(ScalarType.Float32), k.to(ScalarType.Float32), v.to(ScalarType.Float32), mask, causal: true);
        var nativeError = Reference.MaxAbsDiff(exact, native.to(ScalarType.Float32));
        var error = Reference.MaxAbsDiff(exact, actual.to(ScalarType.Float32));
        Assert.True(error <= nativeError + (ulp / 2), $"error {error:G3} vs native's {nativeError:G3}");
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
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true), Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk), ulp);
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 4)]
    [InlineData(true, 4)]
    public void GradientsEqualNative(bool everything, int keyChunk)
    {
        GradientsMatch(everything, keyChunk, transposed: false);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void GradientsEqualNativeThroughTransposedViews(int keyChunk)
    {
        GradientsMatch(everything: false, keyChunk, transposed: true);
    }

    private static void GradientsMatch(bool everything, int keyChunk, bool transposed)
    {
        using var scope = NewDisposeScope();
        var (q0, k0, v0) = Inputs(21, hq: 6, hkv: everything ? 2 : 6);
        Tensor? mask = everything ? MakeMask(Reference.Seeded(22), new long[] { B, 1, L, S }, isBool: false) : null;
        double? scale = everything ? 0.7 : null;

        var (q1, k1, v1) = (q0.clone().requires_grad_(true), k0.clone().requires_grad_(true), v0.clone().requires_grad_(true));
        var (q2, k2, v2) = (q0.clone().requires_grad_(true), k0.clone().requires_grad_(true), v0.clone().requires_grad_(true));
        var weights = Reference.Randn(Reference.Seeded(23), B, 6, L, Ev);

        // Leaves stay contiguous; the attention sees (B, H, L, E) views of (B, L, H, E) memory when transposed.
        Tensor View(Tensor t) => transposed ? t.transpose(1, 2).contiguous().transpose(1, 2) : t;

        (Reference.Native(View(q1), View(k1), View(v1), mask, causal: everything, scale: scale, gqa: everything) * weights).sum().backward();
        (Chunked(View(q2), View(k2), View(v2), mask, causal: everything, scale: scale, gqa: everything, keyChunk: keyChunk) * weights).sum().backward();

        Reference.AssertClose(q1.grad!, q2.grad!);
        Reference.AssertClose(k1.grad!, k2.grad!);
        Reference.AssertClose(v1.grad!, v2.grad!);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void DropoutChangesEachDrawButKeepsTheExpectedValue(int keyChunk)
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
