using System.Linq;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// Allocates the preallocated output with the dim order of an exemplar (a chunk's native result, or the query),
/// as native SDPA's fused kernels lay out their result like the query: for the usual (B, L, H, E) projection
/// viewed as (B, H, L, E) the result is (B, L, H, Ev) in memory, so the caller's
/// <c>transpose(1, 2).reshape(B, L, H*Ev)</c> stays free and each chunk's copy is a plain block copy.
/// </summary>
/// <remarks>
/// The tensor is allocated with those strides directly (<c>empty_strided</c>), not as a permuted view of a buffer:
/// an output that is no view can be returned from a custom autograd function and modified in place by the caller.
/// </remarks>
internal static class OutputLayout
{
    public static Tensor Allocate(long[] shape, Tensor exemplar)
    {
        var rank = shape.Length;
        if (exemplar.dim() != rank)
        {
            return empty(shape, exemplar.dtype, exemplar.device);
        }

        var strides = exemplar.stride();
        // Outer to inner by stride; ties (size-1 dims) keep their order. LINQ's ordering is stable.
        var order = Enumerable.Range(0, rank).OrderByDescending(d => strides[d]).ToArray();
        if (order.Select((d, i) => d == i).All(same => same))
        {
            return empty(shape, exemplar.dtype, exemplar.device);
        }

        var layout = new long[rank];
        long stride = 1;
        for (var i = rank - 1; i >= 0; i--)
        {
            layout[order[i]] = stride;
            stride *= shape[order[i]];
        }

        return empty_strided(shape, layout, exemplar.dtype, exemplar.device);
    }
}
