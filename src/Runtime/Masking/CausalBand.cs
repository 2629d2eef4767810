using System;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Masking;

/// <summary>
/// The causal mask of one step, top-left aligned as PyTorch's <c>is_causal</c>: query row i may attend key j
/// iff j &lt;= i, whatever L and S. A step covering rows [rowStart, rowStart + rows) and keys
/// [keyStart, keyStart + keys) therefore allows key j for local row r iff keyStart + j &lt;= rowStart + r.
/// The band is built per step (rows x keys bools), never for the whole L x S.
/// </summary>
internal static class CausalBand
{
    /// <summary>True when every key of the step is allowed for every row: no band needed.</summary>
    public static bool IsFullyVisible(long rowStart, long keyStart, long keys) => keyStart + keys - 1 <= rowStart;

    /// <summary>(rows, keys) bools, true where the key may be attended.</summary>
    public static Tensor Build(long rowStart, long rows, long keyStart, long keys, Device device)
    {
        using var rowIndex = arange(rowStart, rowStart + rows, dtype: ScalarType.Int64, device: device);
        using var keyIndex = arange(keyStart, keyStart + keys, dtype: ScalarType.Int64, device: device);
        using var column = rowIndex.unsqueeze(1);
        return keyIndex.le(column);
    }

    /// <summary>
    /// Merges a caller's mask (sliced to the step, may be null) with the step's band: both apply.
    /// A bool mask is AND-ed; a floating mask keeps its values where the band allows and gets -inf elsewhere.
    /// The result broadcasts to the step's scores.
    /// </summary>
    public static Tensor Combine(Tensor? mask, Tensor band)
    {
        if (mask is null)
        {
            return band;
        }

        if (mask.dtype == ScalarType.Bool)
        {
            return mask.logical_and(band);
        }

        using var hidden = tensor(double.NegativeInfinity, mask.dtype, mask.device);
        return where(band, mask, hidden);
    }
}
