using System.Collections.Generic;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// Grouped-query attention without copies: with G query heads per key (or value) head, an (N..., Hq, rows, x)
/// tensor is viewed as (N..., Hkv, G, rows, x) and the key (or value) block as (N..., Hkv, 1, keys, x), so the
/// matmul broadcasts each key/value head over its group, exactly as <c>repeat_interleave(G, dim: -3)</c> would,
/// and the gradient of the shared head is the sum over its group (<see cref="SumTo"/>).
/// </summary>
/// <param name="Groups">Query heads per key/value head; 1 = plain broadcasting (no GQA, or a single shared head).</param>
internal readonly record struct HeadGroups(long Groups)
{
    /// <summary>The grouping of <paramref name="keyOrValue"/> when each of its heads serves <paramref name="repeats"/> query heads.</summary>
    public static HeadGroups For(long repeats, Tensor keyOrValue) =>
        new(repeats > 1 && keyOrValue.size(-3) > 1 ? repeats : 1);

    private bool IsGrouped => Groups > 1;

    /// <summary>(N..., Hq, r, c) as (N..., Hkv, G, r, c); a view.</summary>
    public Tensor SplitQueryHeads(Tensor t) =>
        // TorchSharp's unflatten takes a non-negative dim.
        IsGrouped ? t.unflatten(t.dim() - 3, t.size(-3) / Groups, Groups) : t;

    /// <summary>(N..., Hkv, G, r, c) back to (N..., Hq, r, c); a view of a matmul result.</summary>
    public Tensor JoinQueryHeads(Tensor t) => IsGrouped ? t.flatten(-4, -3) : t;

    /// <summary>(N..., Hkv, s, c) as (N..., Hkv, 1, s, c), broadcasting over the group.</summary>
    public Tensor Shared(Tensor keyOrValue) => IsGrouped ? keyOrValue.unsqueeze(-3) : keyOrValue;

    /// <summary><paramref name="left"/> (N..., Hq, r, x) @ <paramref name="sharedRight"/> (N..., Hkv, x, c) → (N..., Hq, r, c).</summary>
    public Tensor QueryHeadsTimesShared(Tensor left, Tensor sharedRight) =>
        JoinQueryHeads(SplitQueryHeads(left).matmul(Shared(sharedRight)));

    /// <summary>
    /// <paramref name="left"/>ᵀ (N..., Hq, x, r) @ <paramref name="right"/> (N..., Hq, x, c), summed onto
    /// <paramref name="target"/>'s shape (N..., Hkv, r, c): the gradient of a shared key/value block.
    /// </summary>
    public Tensor TransposedProductOnto(Tensor left, Tensor right, long[] target)
    {
        var product = SplitQueryHeads(left).transpose(-2, -1).matmul(SplitQueryHeads(right));
        if (!IsGrouped)
        {
            return SumTo(product, target);
        }

        var grouped = new long[target.Length + 1];
        target.CopyTo(grouped, 0);
        grouped[grouped.Length - 1] = target[target.Length - 1];
        grouped[grouped.Length - 2] = target[target.Length - 2];
        grouped[grouped.Length - 3] = 1;
        return SumTo(product, grouped).squeeze(-3);
    }

    /// <summary>
    /// Sums <paramref name="t"/> down to <paramref name="shape"/>, which broadcasts to t's shape: the gradient of a
    /// broadcast operand (extra leading dims and size-1 dims are summed). No copy when nothing is broadcast.
    /// </summary>
    public static Tensor SumTo(Tensor t, long[] shape)
    {
        var own = t.shape;
        var extra = own.Length - shape.Length;
        var dims = new List<long>();
        for (var i = 0; i < extra; i++)
        {
            dims.Add(i);
        }

        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1 && own[extra + i] != 1)
            {
                dims.Add(extra + i);
            }
        }

        if (dims.Count == 0)
        {
            return t;
        }

        var summed = t.sum(dims.ToArray(), keepdim: true);
        return extra > 0 ? summed.reshape(shape) : summed;
    }
}
