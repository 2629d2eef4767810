using System;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Query chunking: native SDPA on each block of query rows against the keys it can see, written into one
/// preallocated output. Scores per step: batch*heads*rows*S instead of batch*heads*L*S.
/// </summary>
/// <remarks>
/// Each chunk runs in its own dispose scope, so its slices, merged mask and result are freed before the next.
/// The chunk's result is copied into a view of the output (<c>narrow(...).copy_</c>): autograd records the copy
/// (CopySlices), so gradients reach query, key and value as through native SDPA, without a list and a cat.
/// Under <c>is_causal</c> a chunk starting at row s with r rows can only see keys j &lt; s + r, so key and
/// value are narrowed to those (a view, no copy): less work than the full rectangle.
/// </remarks>
internal static class QueryChunkKernel
{
    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks)
    {
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        var length = problem.QueryLength;
        var keyLength = problem.KeyLength;

        if (plan.QueryChunks <= 1)
        {
            return NativeKernel.Step(problem, hooks, problem.Query, key, value, problem.Mask, 0, length, keyLength);
        }

        Tensor? output = null;
        for (long start = 0; start < length; start += plan.QueryRows)
        {
            using var scope = NewDisposeScope();
            var rows = Math.Min(plan.QueryRows, length - start);
            var keys = problem.IsCausal ? Math.Min(keyLength, start + rows) : keyLength;

            var query = problem.Query.narrow(-2, start, rows);
            var chunkKey = keys == keyLength ? key : key.narrow(-2, 0, keys);
            var chunkValue = keys == keyLength ? value : value.narrow(-2, 0, keys);
            var mask = MaskSlicer.Slice(problem.Mask, start, rows, 0, keys);

            var result = NativeKernel.Step(problem, hooks, query, chunkKey, chunkValue, mask, start, rows, keys);
            // Laid out like native's own result (which follows the query's layout on the fused paths).
            output ??= scope.MoveToOuter(OutputLayout.Allocate(problem.OutputShape, result));
            output.narrow(-2, start, rows).copy_(result);
        }

        return output!;
    }
}
