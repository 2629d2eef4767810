using static TorchSharp.torch;

namespace ChunkedAttention.Masking;

/// <summary>
/// Cuts the part of a caller's mask that one step needs. The mask broadcasts to (N..., Hq, L, S), so its
/// query dim is L or 1 and its key dim is S or 1: only dims of full length are sliced, size-1 dims keep
/// broadcasting. Slices are views (no copy).
/// </summary>
internal static class MaskSlicer
{
    /// <summary>The mask for query rows [rowStart, rowStart + rows) and keys [keyStart, keyStart + keys).</summary>
    public static Tensor? Slice(Tensor? mask, long rowStart, long rows, long keyStart, long keys)
    {
        if (mask is null)
        {
            return null;
        }

        var m = mask;
        var queryDim = m.size(-2);
        if (queryDim != 1 && (rowStart != 0 || rows != queryDim))
        {
            m = m.narrow(-2, rowStart, rows);
        }

        var keyDim = m.size(-1);
        if (keyDim != 1 && (keyStart != 0 || keys != keyDim))
        {
            m = m.narrow(-1, keyStart, keys);
        }

        return m;
    }
}
