using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// One native SDPA call with the adaptations TorchSharp's binding lacks: <c>scale</c> (the query is
/// pre-multiplied by scale*sqrt(E), since native always scales by 1/sqrt(E)), <c>enable_gqa</c> (key/value heads
/// repeated interleaved) and causal together with a mask (merged into one mask; TorchSharp throws otherwise).
/// Used for the non-chunking path of <see cref="ChunkedSdpa.Attention"/> and, on slices, for each query chunk.
/// </summary>
internal static class NativeKernel
{
    /// <summary>
    /// The one rule of what TorchSharp's own SDPA computes as PyTorch does: no explicit scale, no grouped-query
    /// heads, and not causal together with a mask. Exactly the three cases <see cref="Step"/> adapts.
    /// </summary>
    public static bool RunsAsIs(bool hasMask, bool isCausal, bool hasScale, bool enableGqa) =>
        !hasScale && !enableGqa && !(isCausal && hasMask);

    /// <summary>Attention over the whole problem. Temporaries belong to the caller's dispose scope.</summary>
    public static Tensor Run(AttentionProblem problem, KernelHooks hooks)
    {
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        var length = problem.QueryLength;
        var keys = problem.KeyLength;
        return Step(problem, hooks, problem.Query, key, value, problem.Mask, 0, length, keys);
    }

    /// <summary>
    /// Native attention of query rows [rowStart, rowStart + rows) (<paramref name="query"/> already sliced to them)
    /// against the first <paramref name="keys"/> keys. <paramref name="mask"/> is the caller's mask sliced the same way.
    /// </summary>
    public static Tensor Step(AttentionProblem problem, KernelHooks hooks, Tensor query, Tensor key, Tensor value,
        Tensor? mask, long rowStart, long rows, long keys)
    {
        if (problem.NativeQueryMultiplier is { } multiplier)
        {
            query = query.mul(multiplier);
        }

        var nativeCausal = false;
        if (problem.IsCausal && keys > 0 && !CausalBand.IsFullyVisible(rowStart, 0, keys))
        {
            if (mask is null && rowStart == 0)
            {
                // From row 0 the band j <= i is exactly native's top-left is_causal, which lets the fused kernel skip work.
                nativeCausal = true;
            }
            else
            {
                var band = CausalBand.Build(rowStart, rows, 0, keys, query.device);
                mask = CausalBand.Combine(mask, band);
            }
        }

        hooks.OnStep?.Invoke(new AttentionStep(rowStart, rows, 0, keys,
            Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));
        return hooks.Native(query, key, value, mask, problem.Dropout, nativeCausal);
    }
}
