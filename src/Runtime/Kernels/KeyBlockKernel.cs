using System;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Query chunks x key blocks, so one step holds batch*heads*rows*keys scores however long S is.
/// <para>Off the CPU, two passes over a chunk's key blocks: the first finds each row's max score m over every visible
/// key; the second sums, per block, the weights exp(score - m) and their products with the values; the chunk's result
/// is the second sum over the first. With the final max known before any weight is formed, no running rescaling is
/// needed, and -m is folded into the second pass's matrix product (below).</para>
/// <para>On the CPU, where subtracting a broadcast max costs little and a second q·kᵀ costs much, one pass with an
/// online softmax: per block the running max, sum and accumulator are rescaled by exp(m_old - m_new).</para>
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>The second pass forms score - m inside the matrix product: the query gets one more column holding -m (and
/// zero padding to a multiple of 8), the keys a column of ones, so q'·k'ᵀ = q·kᵀ - m accumulates in Float32 in the
/// matrix units and is rounded to the inputs' dtype only near 0, where that dtype is most precise. No pass over the
/// score block subtracts a broadcast max (on CUDA that is a strided kernel as slow as three contiguous ones).</item>
/// <item>Precision: the matmuls run in the inputs' dtype as native's fused kernels do (Float16/BFloat16 products
/// accumulate in Float32); the weights are in [0, 1] in that dtype; the sums (l and acc) are Float32 for
/// Float16/BFloat16 inputs, else the inputs' dtype.</item>
/// <item>Without dropout a column of ones after the values (padded to 8 columns) makes the p·v product carry each
/// row's sum of weights too: no separate reduction over the score block.</item>
/// <item>Masks are sliced on both the query and key dims (a bool mask inverted once per call, a floating one added)
/// in both passes. A row that sees no key in any block keeps m = -inf; its stand-in max is 0, so its weights are
/// exp(-inf) = 0 and it ends with l = 0 and acc = 0: zeros, as native gives on the CPU.</item>
/// <item>Causal: key blocks entirely above the diagonal of a chunk are never visited; blocks entirely below it get no
/// band; blocks across it add a window of one additive strip built once per call.</item>
/// <item>Dropout: each block's weights are multiplied by a fresh keep-mask / (1 - p) for the numerator (acc) only,
/// never for l, which is exactly dropout(softmax(scores))·V. The random draws differ from native SDPA's, as between
/// any two dropout calls.</item>
/// <item>Gradients: this kernel runs only when none are needed; otherwise ChunkedSdpa runs the training kernel
/// (Training/), which recomputes blocks in backward instead of letting autograd keep every block's weights.</item>
/// <item>Peak memory: one block of scores plus the chunk's sums; no host synchronisation.</item>
/// <item>Which form runs is decided once per call by the device (<see cref="KernelHooks.KeyBlockPasses"/> overrides it
/// for tests).</item>
/// </list>
/// </remarks>
internal static class KeyBlockKernel
{
    /// <summary>Extra columns appended to query and key (-m and a one, then zeros): a multiple of 8 for the matrix units.</summary>
    private const long Extra = 8;

    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks)
    {
        var call = CallMask.Prepare(problem, nativeSteps: false);
        var sumType = problem.DType is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : problem.DType;
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        var mask = call.Mask;
        var hidden = mask is not null && mask.dtype == ScalarType.Bool ? mask.logical_not() : null;
        var length = problem.QueryLength;
        var output = OutputLayout.Allocate(problem.OutputShape, problem.Query);
        var twoPass = hooks.KeyBlockPasses is { } passes ? passes == 2 : problem.Query.device_type != DeviceType.CPU;
        var blocks = new Blocks(problem, plan, hooks, key, twoPass ? WithColumns(key, 1.0) : null, value,
            problem.Dropout > 0 ? null : WithColumns(value, 1.0), hidden ?? mask, hidden is not null, sumType);
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

    /// <summary>(..., n, d) followed by a column holding <paramref name="first"/> and zeros, to d + 8 columns.</summary>
    private static Tensor WithColumns(Tensor t, double first)
    {
        var extra = t.shape;
        extra[^1] = Extra;
        using var columns = zeros(extra, t.dtype, t.device);
        using var head = columns.narrow(-1, 0, 1);
        head.fill_(first);
        return cat(new[] { t, columns }, -1);
    }

    /// <summary>What every chunk of one call shares: inputs, the prepared mask, the sums' dtype and the causal band.</summary>
    private sealed class Blocks
    {
        private readonly AttentionProblem _problem;
        private readonly ChunkPlan _plan;
        private readonly KernelHooks _hooks;
        private readonly Tensor _key;
        private readonly Tensor? _keyWithOnes;
        private readonly Tensor _value;
        private readonly Tensor? _valueWithOnes;
        private readonly Tensor? _mask;
        private readonly bool _maskHides;
        private readonly ScalarType _sumType;

        public Blocks(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks, Tensor key, Tensor? keyWithOnes, Tensor value,
            Tensor? valueWithOnes, Tensor? mask, bool maskHides, ScalarType sumType)
        {
            (_problem, _plan, _hooks, _key, _keyWithOnes, _value, _valueWithOnes, _mask, _maskHides, _sumType) =
                (problem, plan, hooks, key, keyWithOnes, value, valueWithOnes, mask, maskHides, sumType);
        }

        /// <summary>The additive causal strip, built at the first block that crosses a diagonal.</summary>
        public Tensor? Band { get; private set; }

        /// <summary>Rows [start, start + rows): the chunk's attention in the sums' dtype.</summary>
        public Tensor Chunk(long start, long rows)
        {
            var problem = _problem;
            // Causal: keys from start + rows on are above the diagonal for every row of the chunk, so the blocks
            // there are never visited.
            var keyEnd = problem.IsCausal ? Math.Min(problem.KeyLength, start + rows) : problem.KeyLength;
            if (keyEnd == 0)
            {
                // No key at all (S = 0): native gives zeros.
                var shape = (long[])problem.OutputShape.Clone();
                shape[^2] = rows;
                return zeros(shape, problem.DType, problem.Query.device);
            }

            // Scaling the rows x E query once is cheaper than scaling every rows x keys score block.
            var query = problem.Query.narrow(-2, start, rows).mul(problem.Scale);
            var rowMask = MaskSlicer.Slice(_mask, start, rows, 0, problem.KeyLength);
            if (_keyWithOnes is null)
            {
                return OnePass(query, rowMask, start, rows, keyEnd);
            }

            // Pass 1: each row's max over its visible keys (exact: maxima of scores are scores).
            Tensor? max = null;
            using (no_grad())
            {
                for (long keyStart = 0; keyStart < keyEnd; keyStart += _plan.KeyRows)
                {
                    var keys = Math.Min(_plan.KeyRows, keyEnd - keyStart);
                    using var blockScope = NewDisposeScope();
                    using var scores = query.matmul(_key.narrow(-2, keyStart, keys).transpose(-2, -1));
                    Restrict(scores, rowMask, start, rows, keyStart, keys);
                    var blockMax = scores.amax(new long[] { -1 }, keepdim: true);
                    var newMax = max is null ? blockMax : max.maximum(blockMax);
                    blockScope.MoveToOuter(newMax);
                    max?.Dispose();
                    max = newMax;
                }
            }

            // A row with no visible key keeps -inf; 0 stands in, so its weights are exp(-inf) = 0 and it ends as zeros.
            using var safeMax = max!.masked_fill(max!.isneginf(), 0.0);
            max.Dispose();
            var extra = safeMax.shape;
            extra[^1] = Extra - 1;
            using var padding = zeros(extra, query.dtype, query.device);
            using var negatedMax = safeMax.neg();
            var queryWithMax = cat(new[] { query, negatedMax, padding }, -1);

            // Pass 2: weights exp(score - m), their sum and their product with the values, block by block.
            Tensor? sum = null, accumulator = null;
            var valueDim = problem.Value.size(-1);
            for (long keyStart = 0; keyStart < keyEnd; keyStart += _plan.KeyRows)
            {
                var keys = Math.Min(_plan.KeyRows, keyEnd - keyStart);
                using var blockScope = NewDisposeScope();
                _hooks.OnStep?.Invoke(new AttentionStep(start, rows, keyStart, keys,
                    Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));

                var shifted = queryWithMax.matmul(_keyWithOnes!.narrow(-2, keyStart, keys).transpose(-2, -1));
                Restrict(shifted, rowMask, start, rows, keyStart, keys);
                var weights = shifted.exp_();

                Tensor blockOut, blockSum;
                if (_valueWithOnes is not null)
                {
                    var product = weights.matmul(_valueWithOnes.narrow(-2, keyStart, keys));
                    blockOut = product.narrow(-1, 0, valueDim);
                    blockSum = product.narrow(-1, valueDim, 1);
                }
                else
                {
                    blockSum = weights.sum(new long[] { -1 }, keepdim: true, type: _sumType);
                    var numerator = nn.functional.dropout(weights, problem.Dropout, training: true);
                    blockOut = numerator.matmul(_value.narrow(-2, keyStart, keys));
                }

                var newSum = sum is null ? blockSum.to(_sumType) : sum.add(blockSum);
                var newAccumulator = accumulator is null ? blockOut.to(_sumType) : accumulator.add(blockOut);
                // The sums survive this block; the last block's are released now, not at the chunk's end.
                blockScope.MoveToOuter(newSum, newAccumulator);
                sum?.Dispose();
                accumulator?.Dispose();
                (sum, accumulator) = (newSum, newAccumulator);
            }

            // A row that saw a key has l of about 1 or more (its max contributes exp(~0)); a row that saw none has l = 0
            // and acc = 0, so l clamped to a tiny positive value gives native's zeros there with one small kernel.
            return accumulator!.div(sum!.clamp_min(1e-30));
        }

        /// <summary>
        /// The chunk in one pass with an online softmax: per block the running max m, the sum l of exp(score - m) and
        /// the accumulator acc of exp(score - m)·V, l and acc rescaled by exp(m_old - m_new) when a block raises m.
        /// </summary>
        private Tensor OnePass(Tensor query, Tensor? rowMask, long start, long rows, long keyEnd)
        {
            var problem = _problem;
            var valueDim = problem.Value.size(-1);
            // Stands in for a running max of -inf (no visible key yet): the scores' lowest finite value, so
            // exp(-inf - it) = 0, not NaN, and subtracting it stays in the scores' dtype.
            var emptyRowMax = problem.DType switch
            {
                ScalarType.Float16 => -65504.0,
                ScalarType.BFloat16 => -3.3895313892515355e38,
                ScalarType.Float32 => float.MinValue,
                _ => double.MinValue,
            };
            Tensor? runningMax = null, runningSum = null, accumulator = null;
            for (long keyStart = 0; keyStart < keyEnd; keyStart += _plan.KeyRows)
            {
                var keys = Math.Min(_plan.KeyRows, keyEnd - keyStart);
                using var blockScope = NewDisposeScope();
                _hooks.OnStep?.Invoke(new AttentionStep(start, rows, keyStart, keys,
                    Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));

                var scores = query.matmul(_key.narrow(-2, keyStart, keys).transpose(-2, -1));
                Restrict(scores, rowMask, start, rows, keyStart, keys);

                // Maxima of scores are scores: exact in the scores' dtype and in the Float32 state alike.
                var blockMax = scores.detach().amax(new long[] { -1 }, keepdim: true);
                var newMax = runningMax is null ? blockMax.to(_sumType) : runningMax.maximum(blockMax);
                var safeMax = newMax.clamp_min(emptyRowMax);
                var weights = scores.sub_(safeMax.dtype == scores.dtype ? safeMax : safeMax.to(scores.dtype)).exp_();

                Tensor blockOut, blockSum;
                if (_valueWithOnes is not null)
                {
                    var product = weights.matmul(_valueWithOnes.narrow(-2, keyStart, keys));
                    blockOut = product.narrow(-1, 0, valueDim);
                    blockSum = product.narrow(-1, valueDim, 1);
                }
                else
                {
                    blockSum = weights.sum(new long[] { -1 }, keepdim: true, type: _sumType);
                    var numerator = nn.functional.dropout(weights, problem.Dropout, training: true);
                    blockOut = numerator.matmul(_value.narrow(-2, keyStart, keys));
                }

                Tensor newSum, newAccumulator;
                if (runningMax is null)
                {
                    newSum = blockSum.to(_sumType);
                    newAccumulator = blockOut.to(_sumType);
                }
                else
                {
                    // state = block + state * exp(m_old - m_new), one fused kernel each.
                    var correction = runningMax.sub(safeMax).exp_();
                    newSum = addcmul(blockSum, runningSum!, correction, 1.0);
                    newAccumulator = addcmul(blockOut, accumulator!, correction, 1.0);
                }

                // The state survives this block; the last block's is released now, not at the chunk's end.
                blockScope.MoveToOuter(newMax, newSum, newAccumulator);
                runningMax?.Dispose();
                runningSum?.Dispose();
                accumulator?.Dispose();
                (runningMax, runningSum, accumulator) = (newMax, newSum, newAccumulator);
            }

            // A row that saw a key has l >= 1 (its max contributes exp(0) = 1); a row that saw none has l = 0 and
            // acc = 0, so l clamped to 1 gives native's zeros there with one small kernel.
            return accumulator!.div(runningSum!.clamp_min(1.0));
        }

        /// <summary>The mask and the causal band of one block, applied in place to its scores.</summary>
        private void Restrict(Tensor scores, Tensor? rowMask, long start, long rows, long keyStart, long keys)
        {
            if (MaskSlicer.Slice(rowMask, 0, rows, keyStart, keys) is { } blockMask)
            {
                if (_maskHides)
                {
                    scores.masked_fill_(blockMask, double.NegativeInfinity);
                }
                else
                {
                    scores.add_(blockMask);
                }
            }

            if (_problem.IsCausal && !CausalBand.IsFullyVisible(start, keyStart, keys))
            {
                Band ??= CausalBand.ForKeyBlocks(_plan.QueryRows, _plan.KeyRows, scores.dtype, scores.device)
                    .DetachFromDisposeScope();
                scores.add_(CausalBand.KeyBlockWindow(Band, _plan.QueryRows, start, rows, keyStart, keys));
            }
        }
    }
}
