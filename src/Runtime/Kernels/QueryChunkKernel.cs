using System;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Query chunking: native SDPA on each block of query rows against the keys it can see, written into one
/// preallocated output. Scores per step: batch*heads*rows*S instead of batch*heads*L*S. One chunk of all L rows is
/// the unchunked native call (<see cref="NativeKernel.Run"/>).
/// </summary>
/// <remarks>
/// What does not depend on the chunk is done once per call, before the loop: the mask's preparation
/// (<see cref="CallMask"/>), the query's scaling for an explicit <c>scale</c>, grouped-query heads, and the causal
/// band (<see cref="CausalBand.ForQueryChunks"/>, of which each chunk takes a view), so a chunk costs its slices, one native
/// call and one copy. Each chunk runs in its own dispose scope, so its slices, merged mask and result are freed
/// before the next. The chunk's result is copied into a view of the output (<c>narrow(...).copy_</c>): autograd
/// records the copy (CopySlices), so gradients reach query, key and value as through native SDPA. Under
/// <c>is_causal</c> a chunk starting at row s with r rows can only see keys j &lt; s + r, so key and value are
/// narrowed to those (a view, no copy), and the first chunk without a mask keeps native's own is_causal.
/// </remarks>
internal static class QueryChunkKernel
{
    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks) =>
        Run(problem, plan.QueryChunks <= 1 ? problem.QueryLength : plan.QueryRows, hooks);

    /// <summary>Chunks of <paramref name="chunkRows"/> query rows (the whole query when that is L or more).</summary>
    public static Tensor Run(AttentionProblem problem, long chunkRows, KernelHooks hooks)
    {
        var call = CallMask.Prepare(problem, nativeSteps: true);
        var query = problem.NativeQueryMultiplier is { } multiplier ? problem.Query.mul(multiplier) : problem.Query;
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        var length = problem.QueryLength;
        var keyLength = problem.KeyLength;
        var single = chunkRows >= length;
        chunkRows = Math.Max(1, Math.Min(chunkRows, length));

        Tensor? band = null;
        Tensor? output = null;
        for (long start = 0; start < length || (single && start == 0); start += chunkRows)
        {
            using var scope = NewDisposeScope();
            var rows = single ? length : Math.Min(chunkRows, length - start);
            var keys = problem.IsCausal ? Math.Min(keyLength, start + rows) : keyLength;

            var chunkQuery = single ? query : query.narrow(-2, start, rows);
            var chunkKey = keys == keyLength ? key : key.narrow(-2, 0, keys);
            var chunkValue = keys == keyLength ? value : value.narrow(-2, 0, keys);
            var mask = MaskSlicer.Slice(call.Mask, start, rows, 0, keys);

            var nativeCausal = false;
            if (problem.IsCausal && keys > 0 && !CausalBand.IsFullyVisible(start, 0, keys))
            {
                if (mask is null && start == 0)
                {
                    // From row 0 the band j <= i is exactly native's top-left is_causal, which lets the fused kernel skip work.
                    nativeCausal = true;
                }
                else
                {
                    band ??= scope.MoveToOuter(CausalBand.ForQueryChunks(chunkRows, length, problem.DType, problem.Query.device));
                    mask = CausalBand.Combine(mask, CausalBand.QueryChunkWindow(band, start, rows, keys));
                }
            }

            hooks.OnStep?.Invoke(new AttentionStep(start, rows, 0, keys,
                Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));
            var result = hooks.Native(chunkQuery, chunkKey, chunkValue, mask, problem.Dropout, nativeCausal);
            if (single)
            {
                output = scope.MoveToOuter(result);
                break;
            }

            // Laid out like native's own result (which follows the query's layout on the fused paths).
            output ??= scope.MoveToOuter(OutputLayout.Allocate(problem.OutputShape, result));
            output.narrow(-2, start, rows).copy_(result);
        }

        return call.Finish(output!);
    }
}
