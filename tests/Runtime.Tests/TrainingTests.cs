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
/// The training path beyond equality with native: finite-difference gradient checks in Float64, which path runs
/// when, and the steps backward visits. Dropout: <see cref="TrainingDropoutTests"/>.
/// </summary>
public class TrainingTests
{
    internal static readonly ChunkedAttentionOptions Blocks = new() { ChunkSize = 2, KeyChunkSize = 4 };

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

    /// <summary>
    /// Every element of every input: (f(x + h) - f(x - h)) / 2h of f = Σ out ∘ w against the analytic gradient,
    /// with each forward through the training path (inputs require grad).
    /// </summary>
    internal static void GradCheck(Func<Tensor[], Tensor> attention, Tensor[] inputs, double h = 1e-6, double tolerance = 1e-7)
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

    [Theory]
    [InlineData(DeviceType.CUDA, ScalarType.Float16, true)]
    [InlineData(DeviceType.CUDA, ScalarType.BFloat16, true)]
    [InlineData(DeviceType.CUDA, ScalarType.Float32, true)]
    [InlineData(DeviceType.CUDA, ScalarType.Float64, false)]
    [InlineData(DeviceType.MPS, ScalarType.Float16, false)]
    [InlineData(DeviceType.MPS, ScalarType.Float32, false)]
    [InlineData(DeviceType.CPU, ScalarType.Float32, false)]
    public void QueryChunksKeepNativesBackwardOnlyWhereItIsFused(DeviceType device, ScalarType dtype, bool fused)
    {
        // Fused: native per query chunk saves row statistics only, so the recomputing kernel would only cost time.
        Assert.Equal(fused, TrainingKernel.NativeBackwardIsFused(device, dtype));
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
