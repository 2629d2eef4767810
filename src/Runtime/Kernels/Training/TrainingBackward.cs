using System;
using ChunkedAttention.Masking;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>The gradients backward returns; null where the input needs none.</summary>
internal readonly record struct AttentionGradients(Tensor? Query, Tensor? Key, Tensor? Value, Tensor? Mask);

/// <summary>
/// Backward of the training path, the flash-attention recurrence over the same steps as forward: each step's
/// scores S and probabilities P = exp(S - lse) are recomputed from the saved inputs and row statistics, used, and
/// freed before the next step, so backward never holds more than one step's scores.
/// </summary>
/// <remarks>
/// <para>Per step, with dO the output's gradient, O the output, D = rowsum(dO ∘ O) (once per call, O(L)),
/// and K the step's keep-mask scaled by 1/(1-p) (all ones without dropout):
/// dV += (P ∘ K)ᵀ dO; dP = (dO Vᵀ) ∘ K; dS = P ∘ (dP − D); dQ += dS K·scale; dK += dSᵀ (Q·scale); dMask += dS.</para>
/// <para>Loop order: key blocks outside, query chunks inside, so a block's dK and dV are complete when its inner loop
/// ends and only dQ accumulates across the outer loop. Accumulators are in the state dtype (Float32 for half
/// inputs); for Float32/Float64 inputs they are the gradients themselves, so nothing extra is held.</para>
/// <para>Grouped-query and broadcast heads: dK and dV are summed over the query heads that share them
/// (<see cref="HeadGroups"/>); the gradient of any broadcast operand is summed to its own shape.</para>
/// </remarks>
internal static class TrainingBackward
{
    public static AttentionGradients Run(TrainingCall call, Tensor query, Tensor key, Tensor value, Tensor? mask,
        Tensor output, Tensor logSumExp, Tensor gradOutput)
    {
        var device = query.device;
        var state = call.StateType;

        // D = rowsum(dO ∘ O) = rowsum(P ∘ dP) per row, in the state dtype: (N_out..., L, 1).
        var delta = gradOutput.to(state).mul(output.to(state)).sum(-1, keepdim: true);
        var gradOutputOperand = gradOutput.dtype == call.MatmulType ? gradOutput : gradOutput.to(call.MatmulType);

        var needQuery = call.NeedsQueryGrad;
        var needKey = call.NeedsKeyGrad;
        var needValue = call.NeedsValueGrad;
        var needMask = call.NeedsMaskGrad && mask is not null;
        var needScoresGrad = needQuery || needKey || needMask;

        var queryGrad = needQuery ? zeros(query.shape, state, device) : null;
        var keyGrad = needKey ? zeros(key.shape, call.DType, device) : null;
        var valueGrad = needValue ? zeros(value.shape, call.DType, device) : null;
        var maskGrad = needMask ? zeros(mask!.shape, mask.dtype, device) : null;

        // q·scale in the matmul dtype once (O(L)), not once per key block.
        var scaledQueries = call.ScaledQuery(query, 0, call.QueryLength);
        for (long keyStart = 0; keyStart < call.KeyLength; keyStart += call.KeyRows)
        {
            using var blockScope = NewDisposeScope();
            var keys = Math.Min(call.KeyRows, call.KeyLength - keyStart);
            var keyBlock = call.Operand(key, keyStart, keys);
            var valueBlock = call.Operand(value, keyStart, keys);
            var keyShape = BlockShape(key, keys);
            var valueShape = BlockShape(value, keys);
            var keyAccumulator = needKey ? Accumulator(keyGrad!, keyStart, keys, state) : null;
            var valueAccumulator = needValue ? Accumulator(valueGrad!, keyStart, keys, state) : null;

            for (long start = 0; start < call.QueryLength; start += call.QueryRows)
            {
                var rows = Math.Min(call.QueryRows, call.QueryLength - start);
                if (!call.Visible(start, rows, keyStart))
                {
                    continue;
                }

                using var stepScope = NewDisposeScope();
                var scaledQuery = scaledQueries.narrow(-2, start, rows);
                var chunkGradOutput = gradOutputOperand.narrow(-2, start, rows);
                var lse = logSumExp.narrow(-1, start, rows).unsqueeze(-1);

                // dP = dO Vᵀ first, then P = exp(S - lse), recomputed (hidden scores are -inf and give 0): the two
                // step-sized tensors are allocated back to back and freed together.
                var scoresGrad = needScoresGrad
                    ? call.ValueGroups.QueryHeadsTimesShared(chunkGradOutput, valueBlock.transpose(-2, -1))
                    : null;
                if (scoresGrad is not null && scoresGrad.dtype != state)
                {
                    scoresGrad = scoresGrad.to(state);
                }

                var probabilities = call.Scores(scaledQuery, keyBlock, mask, start, rows, keyStart, keys).sub_(lse).exp_();
                using var keep = call.Dropout?.Build(start, rows, keyStart, keys, device);

                if (valueAccumulator is not null)
                {
                    using var dropped = keep is null ? null : probabilities.mul(keep).mul_(call.Dropout!.KeptScale);
                    var weights = dropped ?? probabilities;
                    using var operand = weights.dtype == call.MatmulType ? null : weights.to(call.MatmulType);
                    using var valueStep = call.ValueGroups.TransposedProductOnto(operand ?? weights, chunkGradOutput, valueShape);
                    valueAccumulator.add_(valueStep);
                }

                if (scoresGrad is null)
                {
                    continue;
                }

                // dS = P ∘ (dP - D) in place of dP (dropout: dP through the same keep-mask).
                if (keep is not null)
                {
                    scoresGrad.mul_(keep).mul_(call.Dropout!.KeptScale);
                }

                scoresGrad.sub_(delta.narrow(-2, start, rows)).mul_(probabilities);
                probabilities.Dispose();

                if (maskGrad is not null)
                {
                    AccumulateMaskGrad(maskGrad, scoresGrad, start, rows, keyStart, keys);
                }

                var operandGrad = scoresGrad.dtype == call.MatmulType ? scoresGrad : scoresGrad.to(call.MatmulType);
                if (queryGrad is not null)
                {
                    var queryStep = call.KeyGroups.QueryHeadsTimesShared(operandGrad, keyBlock);
                    var target = queryGrad.narrow(-2, start, rows);
                    target.add_(HeadGroups.SumTo(queryStep, target.shape), alpha: call.Scale);
                }

                if (keyAccumulator is not null)
                {
                    keyAccumulator.add_(call.KeyGroups.TransposedProductOnto(operandGrad, scaledQuery, keyShape));
                }
            }

            if (keyAccumulator is not null)
            {
                Store(keyAccumulator, keyGrad!, keyStart, keys);
            }

            if (valueAccumulator is not null)
            {
                Store(valueAccumulator, valueGrad!, keyStart, keys);
            }
        }

        return new AttentionGradients(
            queryGrad is null || queryGrad.dtype == call.DType ? queryGrad : queryGrad.to(call.DType),
            keyGrad, valueGrad, maskGrad);
    }

    /// <summary>The shape of a key/value block: the tensor's shape with <paramref name="rows"/> rows.</summary>
    private static long[] BlockShape(Tensor keyOrValue, long rows)
    {
        var shape = keyOrValue.shape;
        shape[shape.Length - 2] = rows;
        return shape;
    }

    /// <summary>Where a block's gradient accumulates: the gradient itself when it has the state dtype, else a zeroed block.</summary>
    private static Tensor Accumulator(Tensor gradient, long start, long rows, ScalarType state) =>
        gradient.dtype == state ? gradient.narrow(-2, start, rows) : zeros(BlockShape(gradient, rows), state, gradient.device);

    private static void Store(Tensor accumulator, Tensor gradient, long start, long rows)
    {
        if (accumulator.dtype != gradient.dtype)
        {
            gradient.narrow(-2, start, rows).copy_(accumulator);
        }
    }

    /// <summary>dMask += dS for a floating mask (added to the scores unscaled), summed over the dims the mask broadcasts.</summary>
    private static void AccumulateMaskGrad(Tensor maskGrad, Tensor scoresGrad, long start, long rows, long keyStart, long keys)
    {
        var target = MaskSlicer.Slice(maskGrad, start, rows, keyStart, keys)!;
        var step = HeadGroups.SumTo(scoresGrad, target.shape);
        target.add_(step.dtype == target.dtype ? step : step.to(target.dtype));
    }
}
