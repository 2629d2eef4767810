using System;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Query chunks x key blocks, merged with an online softmax, so one step holds batch*heads*rows*keys scores
/// however long S is. Per query chunk it keeps, for each row, the running max m, the running sum l of
/// exp(score - m) and the accumulator acc of exp(score - m)·V, rescaling l and acc by exp(m_old - m_new)
/// whenever a block raises the max; the chunk's result is acc / l.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Precision: scores, the softmax state and acc are Float32 for Float16/BFloat16 inputs (key and value are
/// converted once per call), Float64 stays Float64; the result is converted back to the input dtype.</item>
/// <item>Masks are sliced on both the query and key dims and added (bool: -inf where false) before the block max,
/// so a fully masked block gives max -inf; the max used for exponentials is then taken as 0 and the block
/// contributes exactly 0 instead of 0/0. A row masked in every block ends with l = 0 and gives zeros, as native.</item>
/// <item>Causal: key blocks entirely above the diagonal of a chunk are never visited; blocks entirely below it
/// get no band.</item>
/// <item>Dropout: each block's weights exp(score - m) are multiplied by a fresh keep-mask / (1 - p) for the
/// numerator (acc) only, never for the running sum l, which is exactly dropout(softmax(scores))·V.
/// The random draws differ from native SDPA's, as between any two dropout calls.</item>
/// <item>Gradients: this kernel runs only when none are needed; otherwise ChunkedSdpa runs the training kernel
/// (Training/), which recomputes blocks in backward instead of letting autograd keep every block's probabilities.
/// The row max is taken from detached scores, which lets the big score tensor be updated in place.</item>
/// </list>
/// </remarks>
internal static class KeyBlockKernel
{
    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks)
    {
        var computeType = problem.DType is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : problem.DType;
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        if (computeType != problem.DType)
        {
            key = key.to(computeType);
            value = value.to(computeType);
        }

        var length = problem.QueryLength;
        var output = OutputLayout.Allocate(problem.OutputShape, problem.Query);
        for (long start = 0; start < length; start += plan.QueryRows)
        {
            using var scope = NewDisposeScope();
            var rows = Math.Min(plan.QueryRows, length - start);
            var result = Chunk(problem, plan, hooks, key, value, computeType, start, rows);
            output.narrow(-2, start, rows).copy_(result);
        }

        return output;
    }

    private static Tensor Chunk(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks, Tensor key, Tensor value,
        ScalarType computeType, long start, long rows)
    {
        // Causal: keys from start + rows on are above the diagonal for every row of the chunk, so the blocks
        // there are never visited.
        var keyEnd = problem.IsCausal ? Math.Min(problem.KeyLength, start + rows) : problem.KeyLength;
        var query = problem.Query.narrow(-2, start, rows);
        if (computeType != problem.DType)
        {
            query = query.to(computeType);
        }

        // Scaling the rows x E query once is cheaper than scaling every rows x keys score block.
        query = query.mul(problem.Scale);
        var rowMask = MaskSlicer.Slice(problem.Mask, start, rows, 0, problem.KeyLength);

        Tensor? runningMax = null, runningSum = null, accumulator = null;
        for (long keyStart = 0; keyStart < keyEnd; keyStart += plan.KeyRows)
        {
            var keys = Math.Min(plan.KeyRows, keyEnd - keyStart);

            using var blockScope = NewDisposeScope();
            hooks.OnStep?.Invoke(new AttentionStep(start, rows, keyStart, keys,
                Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));

            var blockKey = key.narrow(-2, keyStart, keys);
            var blockValue = value.narrow(-2, keyStart, keys);
            var scores = query.matmul(blockKey.transpose(-2, -1));

            var mask = MaskSlicer.Slice(rowMask, 0, rows, keyStart, keys);
            if (mask is not null)
            {
                if (mask.dtype == ScalarType.Bool)
                {
                    scores.masked_fill_(mask.logical_not(), double.NegativeInfinity);
                }
                else
                {
                    scores.add_(mask);
                }
            }

            if (problem.IsCausal && !CausalBand.IsFullyVisible(start, keyStart, keys))
            {
                var band = CausalBand.Build(start, rows, keyStart, keys, scores.device);
                scores.masked_fill_(band.logical_not(), double.NegativeInfinity);
            }

            var blockMax = scores.detach().amax(new long[] { -1 }, keepdim: true);
            var newMax = runningMax is null ? blockMax : runningMax.maximum(blockMax);
            // Rows with no visible key so far have max -inf; 0 keeps exp(-inf - 0) = 0 instead of NaN.
            var safeMax = newMax.masked_fill(newMax.isneginf(), 0.0);
            var weights = scores.sub_(safeMax).exp_();

            var blockSum = weights.sum(-1, keepdim: true);
            var numerator = problem.Dropout > 0 ? nn.functional.dropout(weights, problem.Dropout, training: true) : weights;
            var blockOut = numerator.matmul(blockValue);

            Tensor newSum, newAccumulator;
            if (runningMax is null)
            {
                newSum = blockSum;
                newAccumulator = blockOut;
            }
            else
            {
                var correction = runningMax.sub(safeMax).exp_();
                newSum = runningSum!.mul(correction).add_(blockSum);
                newAccumulator = accumulator!.mul(correction).add_(blockOut);
            }

            // The state survives this block; last block's state is released now, not at the chunk's end.
            blockScope.MoveToOuter(newMax, newSum, newAccumulator);
            runningMax?.Dispose();
            runningSum?.Dispose();
            accumulator?.Dispose();
            (runningMax, runningSum, accumulator) = (newMax, newSum, newAccumulator);
        }

        if (accumulator is null)
        {
            // No visible key at all (S = 0): native gives zeros.
            var shape = (long[])problem.OutputShape.Clone();
            shape[^2] = rows;
            return zeros(shape, problem.DType, problem.Query.device);
        }

        // l = 0 only where every key was masked; acc is 0 there too, and 0 / 1 gives native's zeros.
        var divisor = runningSum!.masked_fill(runningSum!.eq(0), 1.0);
        var chunk = accumulator.div(divisor);
        return chunk.dtype == problem.DType ? chunk : chunk.to(problem.DType);
    }
}
