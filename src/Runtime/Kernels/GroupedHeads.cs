using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>Grouped-query attention: the key/value heads each serve a group of consecutive query heads.</summary>
internal static class GroupedHeads
{
    /// <summary>
    /// Repeats the heads (dim -3) interleaved, as PyTorch's <c>repeat_interleave(repeats, dim=-3)</c>, so head h of
    /// the query meets head h / repeats. A single head needs no copy: it broadcasts to every query head.
    /// Done once per call, never per chunk.
    /// </summary>
    public static Tensor Expand(Tensor keyOrValue, long repeats) =>
        repeats == 1 || keyOrValue.size(-3) == 1 ? keyOrValue : keyOrValue.repeat_interleave(repeats, dim: -3);
}
