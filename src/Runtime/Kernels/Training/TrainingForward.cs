using System;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// Forward of the training path: per query chunk, the key blocks merged by an online softmax (one block when the
/// keys are whole), keeping for backward only the output and each row's log-sum-exp of its scores.
/// </summary>
/// <remarks>
/// Per chunk and row it keeps the running max m, the running sum l of exp(score - m) and acc = Σ dropped(exp(score - m))·V,
/// rescaled by exp(m_old - m_new) when a block raises the max. The result is acc / l and the row statistic
/// lse = m + log(l), so that backward recovers each probability as exp(score - lse) from recomputed scores.
/// A row that sees no key (every score -inf) has l = 0: its output is 0 (native's zeros) and its lse is stored as 0,
/// which turns its recomputed probabilities into exp(-inf) = 0 and its gradients into zeros.
/// </remarks>
internal static class TrainingForward
{
    /// <summary>The output (the query's dtype and layout) and the log-sum-exp (N..., Hq, L) in the state dtype.</summary>
    public static (Tensor Output, Tensor LogSumExp) Run(TrainingCall call, Tensor query, Tensor key, Tensor value, Tensor? mask)
    {
        var output = OutputLayout.Allocate(call.OutputShape, query);
        var lseShape = new long[call.ScoreLeading.Length + 1];
        call.ScoreLeading.CopyTo(lseShape, 0);
        lseShape[lseShape.Length - 1] = call.QueryLength;
        var logSumExp = empty(lseShape, call.StateType, query.device);

        for (long start = 0; start < call.QueryLength; start += call.QueryRows)
        {
            using var scope = NewDisposeScope();
            var rows = Math.Min(call.QueryRows, call.QueryLength - start);
            var (chunk, chunkLse) = Chunk(call, query, key, value, mask, start, rows);
            output.narrow(-2, start, rows).copy_(chunk);
            logSumExp.narrow(-1, start, rows).copy_(chunkLse);
        }

        return (output, logSumExp);
    }

    private static (Tensor Output, Tensor LogSumExp) Chunk(TrainingCall call, Tensor query, Tensor key, Tensor value,
        Tensor? mask, long start, long rows)
    {
        var keyEnd = call.VisibleKeys(start, rows);
        var scaledQuery = call.ScaledQuery(query, start, rows);

        Tensor? runningMax = null, runningSum = null, accumulator = null;
        for (long keyStart = 0; keyStart < keyEnd; keyStart += call.KeyRows)
        {
            var keys = Math.Min(call.KeyRows, keyEnd - keyStart);
            using var blockScope = NewDisposeScope();

            var scores = call.Scores(scaledQuery, call.Operand(key, keyStart, keys), mask, start, rows, keyStart, keys);
            var blockMax = scores.amax(new long[] { -1 }, keepdim: true);
            var newMax = runningMax is null ? blockMax : runningMax.maximum(blockMax);
            // Rows with no visible key so far have max -inf; 0 keeps exp(-inf - 0) = 0 instead of NaN.
            var safeMax = newMax.masked_fill(newMax.isneginf(), 0.0);
            var weights = scores.sub_(safeMax).exp_();
            var blockSum = weights.sum(-1, keepdim: true);
            if (call.Dropout is { } dropout)
            {
                using var keep = dropout.Build(start, rows, keyStart, keys, weights.device);
                weights.mul_(keep).mul_(dropout.KeptScale);
            }

            var blockOut = call.TimesValue(weights, call.Operand(value, keyStart, keys));

            Tensor newSum, newAccumulator;
            if (runningMax is null)
            {
                newSum = blockSum;
                newAccumulator = blockOut;
            }
            else
            {
                // A running max of -inf (nothing seen yet) gives exp(-inf) = 0, and its sum and acc are 0 anyway.
                var correction = runningMax.sub(safeMax).exp_();
                newSum = runningSum!.mul(correction).add_(blockSum);
                newAccumulator = accumulator!.mul(correction).add_(blockOut);
            }

            blockScope.MoveToOuter(newMax, newSum, newAccumulator);
            runningMax?.Dispose();
            runningSum?.Dispose();
            accumulator?.Dispose();
            (runningMax, runningSum, accumulator) = (newMax, newSum, newAccumulator);
        }

        var outputShape = (long[])call.OutputShape.Clone();
        outputShape[outputShape.Length - 2] = rows;
        var lseShape = new long[call.ScoreLeading.Length + 1];
        call.ScoreLeading.CopyTo(lseShape, 0);
        lseShape[lseShape.Length - 1] = rows;
        if (accumulator is null)
        {
            // No key at all (S = 0): native gives zeros.
            return (zeros(outputShape, call.DType, query.device), zeros(lseShape, call.StateType, query.device));
        }

        // l = 0 only where every key was hidden; acc is 0 there too, and 0 / 1 gives native's zeros.
        var empty = runningSum!.eq(0);
        var divisor = runningSum.masked_fill(empty, 1.0);
        var result = accumulator.div_(divisor);
        var rowMax = runningMax!.masked_fill(empty, 0.0);
        var lse = divisor.log_().add_(rowMax).squeeze(-1);
        return (result.dtype == call.DType ? result : result.to(call.DType), lse);
    }
}
