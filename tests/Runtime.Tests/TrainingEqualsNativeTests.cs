using System;
using System.Collections.Generic;
using ChunkedAttention.Kernels;
using ChunkedAttention.Kernels.Training;
using ChunkedAttention.Runtime.Tests.Support;
using ChunkedAttention.Validation;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// Training through <see cref="ChunkedSdpa.Chunked"/> (the custom autograd function) against native SDPA's forward
/// and backward in the same test, for every case of <see cref="ChunkedEqualsNativeTests"/>: outputs within 1e-5,
/// gradients of query, key, value (and a floating mask that requires grad) within 1e-5 of their scale. The cases are
/// stated here (not shared with the forward tests) so that either table can change alone.
/// </summary>
public class TrainingEqualsNativeTests
{
    private const long B = 2, H = 3, L = 7, S = 9, E = 4, Ev = 5;

    public static IEnumerable<object[]> KeyChunks() => new[] { new object[] { 0 }, new object[] { 4 } };

    /// <summary>Every mask shape that broadcasts to (B, H, L, S), bool and floating, query chunks and key blocks.</summary>
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

    private static AttentionInputs Inputs(long seed, long l = L, long s = S, long hq = H, long hkv = H,
        ScalarType dtype = ScalarType.Float32) =>
        AttentionInputs.Random(seed, l, s, hq, hkv, B, E, Ev, dtype);

    private static Tensor MakeMask(Generator g, long[] shape, bool isBool) =>
        isBool ? rand(shape, generator: g).gt(0.3) : Reference.Randn(g, shape);

    private static long[] ParseShape(string text) => Array.ConvertAll(text.Split('x'), long.Parse);

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void MaskOfAnyBroadcastingRankAndKind(string shape, bool isBool, int keyChunk)
    {
        var (q, k, v) = Inputs(101);
        var mask = MakeMask(Reference.Seeded(102), ParseShape(shape), isBool);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, keyChunk: keyChunk, maskGrad: !isBool);
    }

    [Theory]
    [InlineData(8, 8, 3, 0)]
    [InlineData(5, 9, 2, 0)]
    [InlineData(9, 5, 2, 0)]
    [InlineData(9, 5, 4, 0)]
    [InlineData(6, 13, 4, 0)]
    [InlineData(13, 6, 5, 0)]
    [InlineData(8, 8, 1, 0)]
    [InlineData(8, 8, 100, 3)]
    [InlineData(8, 8, 3, 3)]
    [InlineData(5, 9, 2, 4)]
    [InlineData(9, 5, 4, 2)]
    [InlineData(6, 13, 4, 5)]
    [InlineData(13, 6, 5, 1)]
    [InlineData(8, 8, 1, 3)]
    public void CausalWithAnyLengthsAndChunks(int l, int s, int chunk, int keyChunk)
    {
        var (q, k, v) = Inputs(103, l, s);
        Gradients.AssertChunkedMatchesNative(q, k, v, causal: true, chunk: chunk, keyChunk: keyChunk);
    }

    [Theory]
    [InlineData("7x9", true, 0)]
    [InlineData("7x9", false, 0)]
    [InlineData("2x1x7x9", true, 0)]
    [InlineData("2x1x7x9", false, 0)]
    [InlineData("1x9", false, 0)]
    [InlineData("3x1x9", false, 0)]
    [InlineData("7x9", true, 4)]
    [InlineData("2x1x7x9", false, 4)]
    [InlineData("1x9", false, 2)]
    [InlineData("3x1x9", true, 4)]
    public void CausalAndMaskBothApply(string shape, bool isBool, int keyChunk)
    {
        var (q, k, v) = Inputs(104);
        var mask = MakeMask(Reference.Seeded(105), ParseShape(shape), isBool);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, keyChunk: keyChunk, maskGrad: !isBool);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void CausalAndMaskWithMoreQueriesThanKeys(int keyChunk)
    {
        var (q, k, v) = Inputs(106, l: 11, s: 5);
        var mask = MakeMask(Reference.Seeded(107), new long[] { B, 1, 11, 5 }, isBool: false);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, chunk: 4, keyChunk: keyChunk, maskGrad: true);
    }

    [Theory]
    [InlineData(0.3, false, 0)]
    [InlineData(1.7, true, 0)]
    [InlineData(0.3, false, 4)]
    [InlineData(1.7, true, 4)]
    public void ExplicitScale(double scale, bool causalAndMask, int keyChunk)
    {
        var (q, k, v) = Inputs(108);
        var mask = causalAndMask ? MakeMask(Reference.Seeded(109), new long[] { L, S }, isBool: false) : null;
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: causalAndMask, scale: scale, keyChunk: keyChunk,
            maskGrad: causalAndMask);
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
        var (q, k, v) = Inputs(110, hq: hq, hkv: hkv);
        var mask = causalMaskScale ? MakeMask(Reference.Seeded(111), new long[] { B, hq, L, S }, isBool: true) : null;
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: causalMaskScale, scale: causalMaskScale ? 0.5 : null,
            gqa: true, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void GroupedQueryAttentionWithDifferentKeyAndValueHeads(int keyChunk)
    {
        // Hq = 6 query heads; 2 key heads (groups of 3) and 3 value heads (groups of 2).
        var g = Reference.Seeded(112);
        var (q, k, v) = (Reference.Randn(g, B, 6, L, E), Reference.Randn(g, B, 2, S, E), Reference.Randn(g, B, 3, S, Ev));
        var mask = MakeMask(g, new long[] { B, 1, L, S }, isBool: false);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, gqa: true, keyChunk: keyChunk, maskGrad: true);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void SingleKeyValueHeadBroadcastsWithoutGqaAsNative(int keyChunk)
    {
        var (q, k, v) = Inputs(113, hq: 4, hkv: 1);
        Gradients.AssertChunkedMatchesNative(q, k, v, keyChunk: keyChunk);
    }

    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 0)]
    [InlineData(true, 4)]
    [InlineData(false, 4)]
    public void FullyMaskedRowsGiveZerosAndZeroGradients(bool isBool, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(114);
        var mask = isBool ? ones(new[] { L, S }, ScalarType.Bool) : zeros(L, S);
        foreach (var row in new long[] { 0, 3, 6 })
        {
            mask[row] = isBool ? tensor(false) : tensor(float.NegativeInfinity);
        }

        Gradients.AssertChunkedMatchesNative(q, k, v, mask, keyChunk: keyChunk);
        var chunked = Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, keyChunk: keyChunk), q, k, v, mask);
        Assert.Equal(0.0, chunked.Output[.., .., 3].abs().max().item<float>());
        Assert.Equal(0.0, chunked.Query![.., .., 3].abs().max().item<float>());
        Assert.True(chunked.Key!.isfinite().all().item<bool>() && chunked.Value!.isfinite().all().item<bool>());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FullyMaskedKeyBlocksContributeNothing(bool isBool)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(115);
        var mask = isBool ? ones(new[] { L, S }, ScalarType.Bool) : zeros(L, S);
        foreach (var key in new long[] { 0, 1, 2, 3, 8 })
        {
            mask[.., key] = isBool ? tensor(false) : tensor(float.NegativeInfinity);
        }

        Gradients.AssertChunkedMatchesNative(q, k, v, mask, keyChunk: 4);
        var chunked = Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, keyChunk: 4), q, k, v, mask);
        Assert.Equal(0.0, chunked.Key![.., .., 0].abs().max().item<float>());
        Assert.Equal(0.0, chunked.Value![.., .., 8].abs().max().item<float>());
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void ThreeDimensionalInputs(int keyChunk)
    {
        var g = Reference.Seeded(116);
        var (q, k, v) = (Reference.Randn(g, H, L, E), Reference.Randn(g, H, S, E), Reference.Randn(g, H, S, Ev));
        var mask = MakeMask(g, new long[] { L, S }, isBool: true);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, keyChunk: keyChunk);
        Gradients.AssertChunkedMatchesNative(q, k, v, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void TwoDimensionalInputs(int keyChunk)
    {
        var g = Reference.Seeded(117);
        var (q, k, v) = (Reference.Randn(g, L, E), Reference.Randn(g, S, E), Reference.Randn(g, S, Ev));
        Gradients.AssertChunkedMatchesNative(q, k, v, causal: true, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void FiveDimensionalInputsWithMask(int keyChunk)
    {
        var g = Reference.Seeded(118);
        var (q, k, v) = (Reference.Randn(g, 2, 2, H, L, E), Reference.Randn(g, 2, 2, H, S, E), Reference.Randn(g, 2, 2, H, S, Ev));
        var mask = MakeMask(g, new long[] { 2, 1, 1, L, S }, isBool: false);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, keyChunk: keyChunk, maskGrad: true);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void BroadcastBatchDimsAsNative(int keyChunk)
    {
        // key (1, H, S, E) and value (H, S, Ev) broadcast over the query's batch: their gradients are summed over it.
        var g = Reference.Seeded(119);
        var (q, k, v) = (Reference.Randn(g, B, H, L, E), Reference.Randn(g, 1, H, S, E), Reference.Randn(g, H, S, Ev));
        Gradients.AssertChunkedMatchesNative(q, k, v, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void ValueWithMoreBatchThanQueryAndKey(int keyChunk)
    {
        // The output takes value's batch: the scores broadcast, and query's and key's gradients sum over it.
        var g = Reference.Seeded(120);
        var (q, k, v) = (Reference.Randn(g, 1, H, L, E), Reference.Randn(g, 1, H, S, E), Reference.Randn(g, B, H, S, Ev));
        Gradients.AssertChunkedMatchesNative(q, k, v, causal: true, keyChunk: keyChunk);
    }

    [Theory]
    [MemberData(nameof(KeyChunks))]
    public void TransposedViews(int keyChunk)
    {
        var g = Reference.Seeded(121);
        var q = Reference.Randn(g, B, L, H * E).view(B, L, H, E).transpose(1, 2);
        var k = Reference.Randn(g, B, S, H * E).view(B, S, H, E).transpose(1, 2);
        var v = Reference.Randn(g, B, S, H * Ev).view(B, S, H, Ev).transpose(1, 2);
        var mask = MakeMask(g, new long[] { B, 1, L, S }, isBool: true);
        Gradients.AssertChunkedMatchesNative(q, k, v, mask, causal: true, keyChunk: keyChunk);
    }

    [Theory]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(false, false, true)]
    [InlineData(false, true, true)]
    public void OnlyTheInputsThatRequireGradGetGradients(bool query, bool key, bool value)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(122);
        var native = Gradients.Run((a, b, c, m) => Reference.Native(a, b, c, m, causal: true), q, k, v, null,
            queryGrad: query, keyGrad: key, valueGrad: value);
        var chunked = Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, causal: true, keyChunk: 4), q, k, v, null,
            queryGrad: query, keyGrad: key, valueGrad: value);
        Gradients.AssertSame(native, chunked, 1e-5);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 0)]
    [InlineData(ScalarType.BFloat16, 4)]
    [InlineData(ScalarType.Float16, 0)]
    [InlineData(ScalarType.Float16, 4)]
    public void HalfPrecisionGradientsNoFurtherFromExactThanNatives(ScalarType dtype, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(123, dtype: dtype);
        var mask = MakeMask(Reference.Seeded(124), new long[] { B, 1, L, S }, isBool: false);
        var halfMask = mask.to(dtype);
        Gradients.Attention native = (a, b, c, m) => Reference.Native(a, b, c, m, causal: true);
        var exact = Gradients.Run(native, q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64),
            mask.to(ScalarType.Float64), maskGrad: true);
        var nativeHalf = Gradients.Run(native, q, k, v, halfMask, maskGrad: true);
        var chunked = Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, causal: true, keyChunk: keyChunk),
            q, k, v, halfMask, maskGrad: true);

        // Each result no further from the Float64 one than native's own half-precision result is, plus one ulp
        // of the gradient's magnitude (the final rounding to the half dtype).
        var epsilon = dtype == ScalarType.BFloat16 ? 1.0 / 128 : 1.0 / 1024;
        AssertNoFurther("output", exact.Output, nativeHalf.Output, chunked.Output, epsilon);
        AssertNoFurther("query", exact.Query!, nativeHalf.Query!, chunked.Query!, epsilon);
        AssertNoFurther("key", exact.Key!, nativeHalf.Key!, chunked.Key!, epsilon);
        AssertNoFurther("value", exact.Value!, nativeHalf.Value!, chunked.Value!, epsilon);
        AssertNoFurther("attn_mask", exact.Mask!, nativeHalf.Mask!, chunked.Mask!, epsilon);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void HalfPrecisionMatmulsOfAcceleratorsStayNearNative(ScalarType dtype)
    {
        // On CUDA/MPS the matmul operands stay in the half dtype (statistics and accumulators in Float32): the same
        // path forced here on the CPU, against native's own distance from the exact result.
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(125, dtype: dtype);
        var mask = MakeMask(Reference.Seeded(126), new long[] { B, 1, L, S }, isBool: false);
        var options = new ChunkedAttentionOptions { ChunkSize = 3, KeyChunkSize = 4 };
        Gradients.Attention native = (a, b, c, m) => Reference.Native(a, b, c, m, causal: true);
        var exact = Gradients.Run(native, q.to(ScalarType.Float64), k.to(ScalarType.Float64), v.to(ScalarType.Float64),
            mask.to(ScalarType.Float64), maskGrad: true);
        var nativeHalf = Gradients.Run(native, q, k, v, mask.to(dtype), maskGrad: true);
        var chunked = Gradients.Run((a, b, c, m) =>
        {
            var problem = AttentionValidator.Validate(a, b, c, m, 0, true, null, false);
            var call = new TrainingCall(problem, ChunkedSdpa.Plan(a, b, options), KernelHooks.Current, matmulType: dtype);
            return ChunkedAttentionFunction.Apply(a, b, c, m, call);
        }, q, k, v, mask.to(dtype), maskGrad: true);

        // Scores rounded to the half dtype once (native's fused kernels keep them in Float32): within one unit in the
        // last place of the values' magnitude beyond native's own error.
        var epsilon = dtype == ScalarType.BFloat16 ? 1.0 / 128 : 1.0 / 1024;
        AssertNoFurther("output", exact.Output, nativeHalf.Output, chunked.Output, epsilon);
        AssertNoFurther("query", exact.Query!, nativeHalf.Query!, chunked.Query!, epsilon);
        AssertNoFurther("key", exact.Key!, nativeHalf.Key!, chunked.Key!, epsilon);
        AssertNoFurther("value", exact.Value!, nativeHalf.Value!, chunked.Value!, epsilon);
        AssertNoFurther("attn_mask", exact.Mask!, nativeHalf.Mask!, chunked.Mask!, epsilon);
    }

    private static void AssertNoFurther(string name, Tensor exact, Tensor native, Tensor actual, double epsilon)
    {
        Assert.Equal(native.dtype, actual.dtype);
        var nativeError = Reference.MaxAbsDiff(exact, native.to(ScalarType.Float64));
        var error = Reference.MaxAbsDiff(exact, actual.to(ScalarType.Float64));
        var slack = epsilon * Math.Max(1, Gradients.MaxAbs(exact));
        Assert.True(error <= nativeError + slack, $"{name}: error {error:G3} vs native's {nativeError:G3} (+{slack:G3})");
    }
}
