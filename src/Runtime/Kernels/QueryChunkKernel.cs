using System;
using System.Collections.Generic;
using System.Linq;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Query chunking: native SDPA on each block of query rows against the keys it can see; the results are joined
/// once at the end. Scores per step: batch*heads*rows*S instead of batch*heads*L*S. One chunk of all L rows is the
/// unchunked native call (<see cref="NativeKernel.Run"/>).
/// </summary>
/// <remarks>
/// <para>On an accelerator a chunk costs what the host spends on it as much as what the device does: each TorchSharp
/// call is a native call, and a 1024-row chunk keeps a large GPU busy for only tens of microseconds. So everything
/// that does not depend on the chunk happens once per call, before the loop: the mask's preparation
/// (<see cref="CallMask"/>: dtype, additive form, aligned rows), the query's scaling for an explicit <c>scale</c>,
/// grouped-query heads, the query's split into chunks (one call), and the causal band (one triangle of which each
/// chunk takes an aligned view). A chunk then costs one native SDPA call (plus key/value prefixes and its band view
/// under <c>is_causal</c>), and on accelerators the results are joined by one <c>cat</c> (on the CPU each is copied
/// into a preallocated output as it comes, which measured faster there) in the memory order native lays its result
/// out in (the query's: for the usual (B, L, H, E) projection viewed as (B, H, L, E), a (B, L, H, Ev) buffer), so
/// the caller's <c>transpose(1, 2).reshape(B, L, H*Ev)</c> stays free. Autograd records the cat, so gradients reach
/// query, key and value as through native SDPA. The chunks' results live until the cat: one output's worth, small
/// beside one chunk's scores.</para>
/// <para>Under <c>is_causal</c> a chunk starting at row s with r rows can only see keys j &lt; s + r, so key and
/// value are narrowed to those (a view, no copy), and the first chunk without a mask keeps native's own is_causal.</para>
/// </remarks>
internal static class QueryChunkKernel
{
    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks) =>
        Run(problem, plan.QueryChunks <= 1 ? problem.QueryLength : plan.QueryRows, hooks);

    /// <summary>Chunks of <paramref name="chunkRows"/> query rows (the whole query when that is L or more).</summary>
    public static Tensor Run(AttentionProblem problem, long chunkRows, KernelHooks hooks)
    {
        var length = problem.QueryLength;
        var keyLength = problem.KeyLength;
        var single = chunkRows >= length;
        var call = CallMask.Prepare(problem, nativeSteps: true, chunked: !single);
        var query = problem.NativeQueryMultiplier is { } multiplier ? problem.Query.mul(multiplier) : problem.Query;
        var key = GroupedHeads.Expand(problem.Key, problem.KeyRepeats);
        var value = GroupedHeads.Expand(problem.Value, problem.ValueRepeats);
        if (single)
        {
            // One call: the band (needed only with a mask; without one native's own is_causal applies) is built as is.
            using var whole = problem.IsCausal && call.Mask is not null && length > 1
                ? CausalBand.ForWholeQuery(length, Math.Min(keyLength, length), problem.DType, problem.Query.device)
                : null;
            return call.Finish(Step(problem, hooks, query, key, value, call.Mask, 0, length, whole));
        }

        // One split each for the query and a mask with a query dim (views, one native call for all chunks).
        var queries = query.split(chunkRows, -2);
        var masks = call.Mask is { } m && m.size(-2) != 1 ? m.split(chunkRows, -2) : null;
        var results = new Tensor[queries.Length];
        // On the CPU each chunk's result is copied into the output as it comes (the copy is multi-threaded and the
        // chunk's result freed at once; a cat there measured slower); elsewhere one cat at the end saves host calls.
        var copyAsItComes = hooks.CopyChunksAsTheyCome ?? problem.Query.device_type == DeviceType.CPU;
        Tensor? output = null;
        Tensor? band = null;
        try
        {
            for (var c = 0; c < queries.Length; c++)
            {
                var start = c * chunkRows;
                if (band is null && problem.IsCausal && (call.Mask is not null || c > 0))
                {
                    band = CausalBand.ForQueryChunks(chunkRows, length, problem.DType, problem.Query.device);
                }

                var rows = Math.Min(chunkRows, length - start);
                results[c] = Step(problem, hooks, queries[c], key, value, masks is null ? call.Mask : masks[c], start, rows, band);
                if (copyAsItComes)
                {
                    // Laid out like native's own result (which follows the query's layout on the fused paths).
                    output ??= OutputLayout.Allocate(problem.OutputShape, results[c]);
                    using (var target = output.narrow(-2, start, rows))
                    {
                        target.copy_(results[c]);
                    }

                    results[c].Dispose();
                }
            }

            return call.Finish(output ?? Join(results));
        }
        finally
        {
            band?.Dispose();
            foreach (var part in queries.Concat(masks ?? Array.Empty<Tensor>()).Concat(results))
            {
                part?.Dispose();
            }
        }
    }

    /// <summary>
    /// Native attention of query rows [start, start + rows) (<paramref name="query"/> and <paramref name="rowMask"/>
    /// already sliced to them) against the keys they can see. Temporaries other than the result are disposed here.
    /// </summary>
    private static Tensor Step(AttentionProblem problem, KernelHooks hooks, Tensor query, Tensor key, Tensor value,
        Tensor? rowMask, long start, long rows, Tensor? band)
    {
        var keyLength = problem.KeyLength;
        var keys = problem.IsCausal ? Math.Min(keyLength, start + rows) : keyLength;
        var temporaries = new List<Tensor>(4);
        try
        {
            if (keys != keyLength)
            {
                key = Keep(key.narrow(-2, 0, keys), temporaries);
                value = Keep(value.narrow(-2, 0, keys), temporaries);
            }

            var mask = rowMask;
            if (mask is not null && keys != keyLength && mask.size(-1) != 1)
            {
                mask = Keep(mask.narrow(-1, 0, keys), temporaries);
            }

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
                    var window = rows == problem.QueryLength
                        ? band!
                        : Keep(CausalBand.QueryChunkWindow(band!, problem.QueryLength, start, rows, keys), temporaries);
                    mask = mask is null ? window : Keep(CausalBand.Combine(mask, window), temporaries);
                }
            }

            hooks.OnStep?.Invoke(new AttentionStep(start, rows, 0, keys,
                Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(problem.ScoreBatch, rows), keys)));
            return hooks.Native(query, key, value, mask, problem.Dropout, nativeCausal);
        }
        finally
        {
            foreach (var t in temporaries)
            {
                t.Dispose();
            }
        }
    }

    private static Tensor Keep(Tensor t, List<Tensor> temporaries)
    {
        temporaries.Add(t);
        return t;
    }

    /// <summary>
    /// The chunks' results joined along the query rows, in the memory order of the first one (native follows the
    /// query's layout): a permuted view of one contiguous buffer when that order is not the logical one.
    /// </summary>
    private static Tensor Join(Tensor[] results)
    {
        var first = results[0];
        var rank = first.dim();
        var strides = first.stride();
        // Outer to inner by stride; ties (size-1 dims) keep their order. LINQ's ordering is stable.
        var order = Enumerable.Range(0, (int)rank).OrderByDescending(d => strides[d]).ToArray();
        if (order.Select((d, i) => d == i).All(same => same))
        {
            return cat(results, -2);
        }

        var inverse = new long[rank];
        for (var i = 0; i < rank; i++)
        {
            inverse[order[i]] = i;
        }

        var permutation = order.Select(d => (long)d).ToArray();
        var permuted = new Tensor[results.Length];
        try
        {
            for (var c = 0; c < results.Length; c++)
            {
                permuted[c] = results[c].permute(permutation);
            }

            using var joined = cat(permuted, (int)inverse[rank - 2]);
            return joined.permute(inverse);
        }
        finally
        {
            foreach (var p in permuted)
            {
                p?.Dispose();
            }
        }
    }
}
