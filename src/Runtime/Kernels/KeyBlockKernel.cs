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
/// <item>Precision: q·kᵀ and p·v run in the inputs' dtype, as native's fused kernels and the matrix units do
/// (Float16/BFloat16 products accumulate in Float32 inside the matmul); the weights p = exp(score - m) are in [0, 1]
/// in that dtype, as in native's kernels. The softmax state (m, l, acc) is Float32 for Float16/BFloat16 inputs,
/// else the inputs' dtype; the result is converted back once per chunk.</item>
/// <item>Per block: one matmul for the scores, the mask and the causal band applied in place, the block max, the
/// weights computed in place (subtract, exp), their sum, one matmul with the values, and the rescaling of the small
/// state: no copies of the score block, no host synchronisation. Peak memory: one block of scores (plus the
/// state), whatever L and S are.</item>
/// <item>Masks are sliced on both the query and key dims (a bool mask inverted once per call, a floating one added)
/// before the block max, so a fully masked block gives max -inf; the max used for exponentials is then a finite
/// stand-in and the block contributes exactly 0 instead of 0/0. A row masked in every block ends with l = 0 and
/// acc = 0 and gives zeros, as native does on the CPU.</item>
/// <item>Causal: key blocks entirely above the diagonal of a chunk are never visited; blocks entirely below it
/// get no band; blocks across it add a window of one additive triangle built once per call.</item>
/// <item>Dropout: each block's weights are multiplied by a fresh keep-mask / (1 - p) for the numerator (acc) only,
/// never for the running sum l, which is exactly dropout(softmax(scores))·V. The random draws differ from native
/// SDPA's, as between any two dropout calls.</item>
/// <item>Gradients: autograd records the block loop. The row max is taken from detached scores (the result
/// does not depend on it mathematically, so its gradient is exactly zero), which lets the score block be
/// updated in place. Backward keeps every visited block's weights alive: about batch*heads*L*S elements, as manual
/// attention does. Use no_grad for inference to stay at one block.</item>
/// </list>
/// </remarks>
internal static class KeyBlockKernel
{
    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks)
    {
        var call = CallMask.Prepare(problem, nativeSteps: false);
        var stateType = problem.DType is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : problem.DType;
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        var mask = call.Mask;
        var hidden = mask is not null && mask.dtype == ScalarType.Bool ? mask.logical_not() : null;
        var length = problem.QueryLength;
        var output = OutputLayout.Allocate(problem.OutputShape, problem.Query);
        // Without dropout the block's sum of weights comes out of the p·v matmul itself: a column of ones after the
        // values (padded to 8 columns for the matrix units) saves a pass over the score block.
        var valueWithOnes = problem.Dropout > 0 ? null : WithOnesColumn(value);
        var blocks = new Blocks(problem, plan, hooks, key, valueWithOnes ?? value, valueWithOnes is not null,
            hidden ?? mask, hidden is not null, stateType);
        try
        {
            for (long start = 0; start < length; start += plan.QueryRows)
            {
                using var scope = NewDisposeScope();
                var rows = Math.Min(plan.QueryRows, length - start);
                output.narrow(-2, start, rows).copy_(blocks.Chunk(start, rows));
            }
        }
        finally
        {
            blocks.Band?.Dispose();
        }

        return call.Finish(output);
    }

    /// <summary>(..., S, Ev) values followed by a column of ones and zero padding to a multiple of 8 columns.</summary>
    private static Tensor WithOnesColumn(Tensor value)
    {
        var shape = value.shape;
        var ev = shape[^1];
        var extra = (long[])shape.Clone();
        extra[^1] = ((ev + 8) / 8 * 8) - ev;
        using var ones = zeros(extra, value.dtype, value.device);
        using var first = ones.narrow(-1, 0, 1);
        first.fill_(1.0);
        return cat(new[] { value, ones }, -1);
    }

    /// <summary>What every chunk of one call shares: inputs, the prepared mask, the state dtype and the causal band.</summary>
    private sealed class Blocks
    {
        private readonly AttentionProblem _problem;
        private readonly ChunkPlan _plan;
        private readonly KernelHooks _hooks;
        private readonly Tensor _key;
        private readonly Tensor _value;
        private readonly bool _valueHasOnes;
        private readonly Tensor? _mask;
        private readonly bool _maskHides;
        private readonly ScalarType _stateType;

        private readonly double _emptyRowMax;

        public Blocks(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks, Tensor key, Tensor value, bool valueHasOnes,
            Tensor? mask, bool maskHides, ScalarType stateType)
        {
            (_problem, _plan, _hooks, _key, _value, _valueHasOnes, _mask, _maskHides, _stateType) =
                (problem, plan, hooks, key, value, valueHasOnes, mask, maskHides, stateType);
            // Stands in for a running max of -inf (no visible key yet): the scores' lowest finite value, so
            // exp(-inf - it) = 0, not NaN, and subtracting it stays in the scores' dtype.
            _emptyRowMax = problem.DType switch
            {
                ScalarType.Float16 => -65504.0,
                ScalarType.BFloat16 => -3.3895313892515355e38,
                ScalarType.Float32 => float.MinValue,
                _ => double.MinValue,
            };
        }

        /// <summary>The additive causal triangle, built at the first block that crosses a diagonal.</summary>
        public Tensor? Band { get; private set; }

        /// <summary>Rows [start, start + rows): the chunk's attention in the state dtype.</summary>
        public Tensor Chunk(long start, long rows)
        {
            var problem = _problem;
            // Causal: keys from start + rows on are above the diagonal for every row of the chunk, so the blocks
            // there are never visited.
            var keyEnd = problem.IsCausal ? Math.Min(problem.KeyLength, start + rows) : problem.KeyLength;
            // Scaling the rows x E query once is cheaper than scaling every rows x keys score block.
            var queryT = problem.Query.narrow(-2, start, rows).mul(problem.Scale).transpose(-2, -1);
            var rowMask = MaskSlicer.Slice(_mask, start, rows, 0, problem.KeyLength);
            var valueDim = problem.Value.size(-1);

            // Scores are computed transposed, (..., keys, rows): the row max then broadcasts along an outer dim, so
            // subtracting it runs as a contiguous, vectorised kernel (broadcasting along the last dim falls back to
            // a strided one at a third of the bandwidth), and p·v reads the weights through a transposed view.
            // The running max is kept as (..., 1, rows); sum and acc as (..., rows, 1) and (..., rows, Ev).
            Tensor? runningMax = null, runningSum = null, accumulator = null;
            for (long keyStart = 0; keyStart < keyEnd; keyStart += _plan.KeyRows)
            {
                var keys = Math.Min(_plan.KeyRows, keyEnd - keyStart);
                using var blockScope = NewDisposeScope();
                _hooks.OnStep?.Invoke(new AttentionStep(start, rows, keyStart, keys,
                    Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));

                var scores = _key.narrow(-2, keyStart, keys).matmul(queryT);
                if (MaskSlicer.Slice(rowMask, 0, rows, keyStart, keys) is { } blockMask)
                {
                    if (_maskHides)
                    {
                        scores.masked_fill_(blockMask.transpose(-2, -1), double.NegativeInfinity);
                    }
                    else
                    {
                        scores.add_(blockMask.transpose(-2, -1));
                    }
                }

                if (problem.IsCausal && !CausalBand.IsFullyVisible(start, keyStart, keys))
                {
                    Band ??= CausalBand.ForKeyBlocks(_plan.QueryRows, _plan.KeyRows, scores.dtype, scores.device)
                        .DetachFromDisposeScope();
                    scores.add_(CausalBand.KeyBlockWindow(Band, _plan.QueryRows, start, rows, keyStart, keys).transpose(-2, -1));
                }

                // Maxima of scores are scores: exact in the scores' dtype and in the Float32 state alike.
                var blockMax = scores.detach().amax(new long[] { -2 }, keepdim: true);
                var newMax = runningMax is null ? blockMax.to(_stateType) : runningMax.maximum(blockMax);
                var safeMax = newMax.clamp_min(_emptyRowMax);
                var weights = scores.sub_(safeMax.dtype == scores.dtype ? safeMax : safeMax.to(scores.dtype)).exp_();

                Tensor blockOut, blockSum;
                if (_valueHasOnes)
                {
                    var product = weights.transpose(-2, -1).matmul(_value.narrow(-2, keyStart, keys));
                    blockOut = product.narrow(-1, 0, valueDim);
                    blockSum = product.narrow(-1, valueDim, 1);
                }
                else
                {
                    blockSum = weights.sum(new long[] { -2 }, keepdim: true, type: _stateType).transpose(-2, -1);
                    var numerator = problem.Dropout > 0 ? nn.functional.dropout(weights, problem.Dropout, training: true) : weights;
                    blockOut = numerator.transpose(-2, -1).matmul(_value.narrow(-2, keyStart, keys));
                }

                Tensor newSum, newAccumulator;
                if (runningMax is null)
                {
                    newSum = blockSum.to(_stateType);
                    newAccumulator = blockOut.to(_stateType);
                }
                else
                {
                    // state = block + state * exp(m_old - m_new), one fused kernel each.
                    var correction = runningMax.sub(safeMax).exp_().transpose(-2, -1);
                    newSum = addcmul(blockSum, runningSum!, correction, 1.0);
                    newAccumulator = addcmul(blockOut, accumulator!, correction, 1.0);
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

            // A row that saw a key has l >= 1 (its max contributes exp(0) = 1); a row that saw none has l = 0 and
            // acc = 0, so l clamped to 1 gives native's zeros there with one small kernel.
            return accumulator.div(runningSum!.clamp_min(1.0));
        }
    }
}
