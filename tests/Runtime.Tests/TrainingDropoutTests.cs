using System;
using ChunkedAttention.Kernels.Training;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// Dropout on the training path: forward and backward apply the same keep-mask, which equals an explicit reference
/// built from the same keys, does not depend on chunk or block sizes, keeps 1 - p of the weights independently, and
/// holds still under finite differences when the default generator is reseeded. Runs alone: the keys come from the
/// default generator, which <c>manual_seed</c> in parallel tests would otherwise move between draws.
/// </summary>
[Collection(EnvironmentCollection.Name)]
public class TrainingDropoutTests
{
    [Fact]
    public void FiniteDifferencesMatchGradientsWithGqaBoolMaskAndDropoutHeldFixed()
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(202);
        var inputs = new[]
        {
            Reference.Randn(g, 1, 4, 5, 3).to(ScalarType.Float64),
            Reference.Randn(g, 1, 2, 6, 3).to(ScalarType.Float64),
            Reference.Randn(g, 1, 2, 6, 2).to(ScalarType.Float64),
        };
        var mask = rand(new long[] { 1, 1, 5, 6 }, generator: g).gt(0.2);
        // The keep-mask's keys come from the default generator: reseeding before each call holds the mask fixed.
        TrainingTests.GradCheck(x =>
        {
            manual_seed(203);
            return ChunkedSdpa.Chunked(x[0], x[1], x[2], mask, p: 0.3, enable_gqa: true, options: TrainingTests.Blocks);
        }, inputs);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(4, false)]
    [InlineData(4, true)]
    public void DropoutEqualsAnExplicitReferenceWithTheSameKeepMask(int keyChunk, bool gqa)
    {
        using var scope = NewDisposeScope();
        const double p = 0.4;
        var (q, k, v) = AttentionInputs.Random(204, hq: 4, hkv: gqa ? 2 : 4);
        var mask = Reference.Randn(Reference.Seeded(205), 7, 9);

        manual_seed(206);
        var chunked = Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, causal: true, gqa: gqa, keyChunk: keyChunk, p: p),
            q, k, v, mask, maskGrad: true);

        // The same keys drawn the same way, the whole (B, H, L, S) keep-mask at once, and attention written out by hand.
        manual_seed(206);
        var (key1, key2) = DropoutKeepMask.DrawKeys();
        var keep = new DropoutKeepMask(p, key1, key2, new long[] { 2, 4 }, 7, 9).Build(0, 7, 0, 9, q.device);
        var expected = Gradients.Run((a, b, c, m) =>
        {
            var scores = a.matmul((gqa ? b.repeat_interleave(2, dim: 1) : b).transpose(-2, -1)) / Math.Sqrt(4) + m!;
            scores = scores.masked_fill(ones(7, 9, dtype: ScalarType.Bool).tril().logical_not(), double.NegativeInfinity);
            var weights = scores.softmax(-1) * keep / (1 - p);
            return weights.matmul(gqa ? c.repeat_interleave(2, dim: 1) : c);
        }, q, k, v, mask, maskGrad: true);

        Gradients.AssertSame(expected, chunked, 1e-5);
    }

    [Fact]
    public void DropoutPatternDoesNotDependOnChunkOrBlockSizes()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(207, l: 11, s: 13);
        Gradients.Result Run(int chunk, int keyChunk)
        {
            manual_seed(208);
            return Gradients.Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, chunk: chunk, keyChunk: keyChunk, p: 0.5), q, k, v, null);
        }

        var reference = Run(2, 0);
        foreach (var (chunk, keyChunk) in new[] { (5, 0), (3, 4), (1, 13), (11, 5) })
        {
            Gradients.AssertSame(reference, Run(chunk, keyChunk), 1e-5);
        }
    }

    [Fact]
    public void KeepMaskKeepsOneMinusPIndependentlyAndDiffersBetweenCalls()
    {
        using var scope = NewDisposeScope();
        const double p = 0.3;
        manual_seed(209);
        var first = DropoutKeepMask.DrawKeys();
        var second = DropoutKeepMask.DrawKeys();
        var a = new DropoutKeepMask(p, first.Key1, first.Key2, new long[] { 2, 3 }, 64, 128).Build(0, 64, 0, 128, CPU).to(ScalarType.Float64);
        var b = new DropoutKeepMask(p, second.Key1, second.Key2, new long[] { 2, 3 }, 64, 128).Build(0, 64, 0, 128, CPU).to(ScalarType.Float64);

        // 49,152 draws: the standard error of a fraction is about 0.002.
        Assert.InRange(a.mean().item<double>(), 0.69, 0.71);
        Assert.InRange(b.mean().item<double>(), 0.69, 0.71);
        // Neighbours (next key, next row, next head) and the two calls are independent: both kept ~ 0.7² = 0.49.
        Assert.InRange((a[.., .., .., 1..] * a[.., .., .., ..^1]).mean().item<double>(), 0.475, 0.505);
        Assert.InRange((a[.., .., 1..] * a[.., .., ..^1]).mean().item<double>(), 0.475, 0.505);
        Assert.InRange((a[.., 1..] * a[.., ..^1]).mean().item<double>(), 0.475, 0.505);
        Assert.InRange((a * b).mean().item<double>(), 0.475, 0.505);

        // A step's bits are the whole mask's bits at the step's offsets.
        var step = new DropoutKeepMask(p, first.Key1, first.Key2, new long[] { 2, 3 }, 64, 128).Build(17, 5, 40, 9, CPU);
        Assert.True(step.to(ScalarType.Float64).eq(a[.., .., 17..22, 40..49]).all().item<bool>());
    }
}
