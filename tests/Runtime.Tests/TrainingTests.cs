using System;
using System.Collections.Generic;
using System.Linq;
using ChunkedAttention.Kernels.Training;
using ChunkedAttention.Runtime.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// The training path beyond equality with native: finite-difference gradient checks in Float64, dropout with the
/// same keep-mask in forward and backward, which path runs when, and autograd's own safety checks.
/// </summary>
public class TrainingTests
{
    private static readonly ChunkedAttentionOptions Blocks = new() { ChunkSize = 2, KeyChunkSize = 4 };

    // ---- gradcheck: central differences in Float64 --------------------------------------------------------------

    [Fact]
    public void FiniteDifferencesMatchGradientsWithMaskCausalScaleAndKeyBlocks()
    {
        using var scope = NewDisposeScope();
        var g = Reference.Seeded(201);
        var inputs = new[]
        {
            Reference.Randn(g, 1, 2, 5, 3).to(ScalarType.Float64),
            Reference.Randn(g, 1, 2, 6, 3).to(ScalarType.Float64),
            Reference.Randn(g, 1, 2, 6, 2).to(ScalarType.Float64),
            Reference.Randn(g, 5, 6).to(ScalarType.Float64),
        };
        GradCheck(x => ChunkedSdpa.Chunked(x[0], x[1], x[2], x[3], is_causal: true, scale: 0.8, options: Blocks), inputs);
    }

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
        GradCheck(x =>
        {
            manual_seed(203);
            return ChunkedSdpa.Chunked(x[0], x[1], x[2], mask, p: 0.3, enable_gqa: true, options: Blocks);
        }, inputs);
    }

    /// <summary>
    /// Every element of every input: (f(x + h) - f(x - h)) / 2h of f = Σ out ∘ w against the analytic gradient,
    /// with each forward through the training path (inputs require grad).
    /// </summary>
    private static void GradCheck(Func<Tensor[], Tensor> attention, Tensor[] inputs, double h = 1e-6, double tolerance = 1e-7)
    {
        var leaves = inputs.Select(t => t.clone().requires_grad_(true)).ToArray();
        var output = attention(leaves);
        var upstream = Reference.Randn(Reference.Seeded(299), output.shape).to(ScalarType.Float64);
        (output * upstream).sum().backward();

        double Evaluate(Tensor[] x)
        {
            using var evaluation = NewDisposeScope();
            var probe = x.Select(t => t.clone().requires_grad_(true)).ToArray();
            return (attention(probe) * upstream).sum().item<double>();
        }

        for (var i = 0; i < inputs.Length; i++)
        {
            var analytic = leaves[i].grad!;
            var numeric = zeros_like(inputs[i]);
            var flat = numeric.view(-1);
            for (long j = 0; j < inputs[i].numel(); j++)
            {
                var shifted = inputs.Select(t => t.clone()).ToArray();
                shifted[i].view(-1)[j] += h;
                var plus = Evaluate(shifted);
                shifted[i].view(-1)[j] -= 2 * h;
                var minus = Evaluate(shifted);
                flat[j] = (plus - minus) / (2 * h);
            }

            var diff = Reference.MaxAbsDiff(numeric, analytic);
            Assert.True(diff <= tolerance, $"input {i}: analytic vs finite-difference gradient differ by {diff:G4}");
        }
    }

    // ---- dropout ---------------------------------------------------------------------------------------------------

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

    // ---- which path runs -----------------------------------------------------------------------------------------

    [Fact]
    public void GradientsUseTheTrainingPathOnBothChunkedPaths()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(212);
        foreach (var options in new[] { new ChunkedAttentionOptions { ChunkSize = 3 }, new ChunkedAttentionOptions { ChunkSize = 3, KeyChunkSize = 4 } })
        {
            var nativeCalls = 0;
            var recorder = new StepRecorder((a, b, c, m, p, causal) =>
            {
                nativeCalls++;
                return nn.functional.scaled_dot_product_attention(a, b, c, m, p, causal);
            });
            var plan = ChunkedSdpa.Plan(q, k, options);
            var steps = plan.QueryChunks * plan.KeyBlocks;

            var leaf = q.clone().requires_grad_(true);
            var output = recorder.Chunked(leaf, k, v, options);
            Assert.Equal(0, nativeCalls);
            Assert.Equal(steps, recorder.Count);
            output.sum().backward();
            Assert.Equal(2 * steps, recorder.Count);
            Assert.True(recorder.LargestScoreBlock <= plan.MaxScoreElements);

            // No gradient needed: the inference kernels, unchanged (native per chunk on the query-chunk path).
            using (no_grad())
            {
                recorder.Chunked(leaf, k, v, options);
            }

            recorder.Chunked(q, k, v, options);
            Assert.Equal(plan.KeyBlocks > 1 ? 0 : 2 * plan.QueryChunks, nativeCalls);
        }
    }

    [Fact]
    public void OneStepPlansKeepNativeAndItsOwnBackward()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(213);
        var nativeCalls = 0;
        var recorder = new StepRecorder((a, b, c, m, p, causal) =>
        {
            nativeCalls++;
            return nn.functional.scaled_dot_product_attention(a, b, c, m, p, causal);
        });
        var leaf = q.clone().requires_grad_(true);
        recorder.Chunked(leaf, k, v, new ChunkedAttentionOptions { ChunkSize = 100 }).sum().backward();
        Assert.Equal(1, nativeCalls);
        Assert.NotNull(leaf.grad);
    }

    [Fact]
    public void BackwardVisitsTheSameCausalStepsAsForward()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(214, l: 8, s: 8);
        var recorder = new StepRecorder();
        var leaf = q.clone().requires_grad_(true);
        var output = recorder.Chunked(leaf, k, v, new ChunkedAttentionOptions { ChunkSize = 2, KeyChunkSize = 2 }, causal: true);
        var forward = recorder.Steps;
        output.sum().backward();
        var backward = recorder.Steps.Skip(forward.Length).ToArray();

        // 4 query chunks x 4 key blocks, of which the 6 above the diagonal are skipped both ways.
        Assert.Equal(10, forward.Length);
        Assert.Equal(forward.OrderBy(s => (s.QueryStart, s.KeyStart)), backward.OrderBy(s => (s.QueryStart, s.KeyStart)));
    }

    // ---- autograd's guarantees -----------------------------------------------------------------------------------

    [Fact]
    public void EmptyQueryOrKeysGiveEmptyOrZeroGradients()
    {
        using var scope = NewDisposeScope();
        var options = new ChunkedAttentionOptions { ChunkSize = 2, KeyChunkSize = 2 };
        var (q, k, v) = AttentionInputs.Random(217, l: 5, s: 0);
        var noKeys = Gradients.Run((a, b, c, m) => ChunkedSdpa.Chunked(a, b, c, m, options: options), q, k, v, null);
        Assert.Equal(0.0, Gradients.MaxAbs(noKeys.Output));
        Assert.Equal(0.0, Gradients.MaxAbs(noKeys.Query!));
    }
}
