using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Masking;

/// <summary>
/// The causal mask of the steps of one call, top-left aligned as PyTorch's <c>is_causal</c>: query row i may attend
/// key j iff j &lt;= i, whatever L and S. A step covering rows [rowStart, rowStart + rows) and keys
/// [keyStart, keyStart + keys) allows key j for local row r iff j - r &lt;= rowStart - keyStart.
/// </summary>
/// <remarks>
/// Every step's band is a window of one triangle built once per call: an additive mask in the scores' dtype
/// (0 where visible, -inf above the diagonal). A window is a view (no copy, no kernel), so a step pays no band
/// construction, and native SDPA gets a floating mask of the query's dtype (no bool-to-float conversion per call).
/// Query chunks see keys [0, rowStart + rows): their triangle is (chunk rows, L) with the diagonal at its right edge.
/// Key blocks need a band only where a block crosses the diagonal (rowStart - keyStart between -rows and keys): their
/// triangle is a strip (2 rows + keys, keys), small however long L is.
/// </remarks>
internal static class CausalBand
{
    /// <summary>True when every key of the step is allowed for every row: no band needed.</summary>
    public static bool IsFullyVisible(long rowStart, long keyStart, long keys) => keyStart + keys - 1 <= rowStart;

    /// <summary>
    /// Elements by which a window's first element and every row must be aligned: native CUDA SDPA reads an additive
    /// mask with vector loads (PyTorch checks the row stride, not the start, and a misaligned start faults with
    /// "misaligned address"). 16 elements cover 16-byte alignment for every floating dtype.
    /// </summary>
    public const long Alignment = 16;

    /// <summary>
    /// The triangle for query chunks of up to <paramref name="chunkRows"/> rows of an L = <paramref name="length"/>
    /// query: (chunkRows + 16, width) with T[a, c] visible iff c &lt;= a + L, the width rounded up to 16 elements.
    /// Each chunk's band is a window whose first element and rows are 16-element aligned
    /// (<see cref="QueryChunkWindow"/>), whatever the chunk size.
    /// </summary>
    public static Tensor ForQueryChunks(long chunkRows, long length, ScalarType dtype, Device device) =>
        Triangle(chunkRows + Alignment, RoundUp(length + chunkRows + Alignment), length, dtype, device);

    /// <summary>
    /// The band of the query chunk [rowStart, rowStart + rows) against keys [0, keys), keys &lt;= rowStart + rows:
    /// rows from a0 = (rowStart - L) mod 16, columns from c0 = a0 + L - rowStart (a multiple of 16), so local (i, j) is
    /// visible iff j &lt;= i + rowStart.
    /// </summary>
    public static Tensor QueryChunkWindow(Tensor triangle, long length, long rowStart, long rows, long keys)
    {
        var firstRow = (((rowStart - length) % Alignment) + Alignment) % Alignment;
        var firstColumn = firstRow + length - rowStart;
        using var window = triangle.narrow(0, firstRow, rows);
        return window.narrow(1, firstColumn, keys);
    }

    /// <summary>The band of all L = <paramref name="length"/> rows against keys [0, keys): (L, keys), visible iff j &lt;= i.</summary>
    public static Tensor ForWholeQuery(long length, long keys, ScalarType dtype, Device device) =>
        Triangle(length, keys, 0, dtype, device);

    /// <summary>The triangle for key blocks of up to <paramref name="keyRows"/> keys and chunks of up to <paramref name="chunkRows"/> rows.</summary>
    public static Tensor ForKeyBlocks(long chunkRows, long keyRows, ScalarType dtype, Device device) =>
        Triangle((2 * chunkRows) + keyRows, keyRows, -(chunkRows - 1), dtype, device);

    /// <summary>
    /// The band of the block rows [rowStart, rowStart + rows) x keys [keyStart, keyStart + keys) for a block that
    /// crosses the diagonal (-chunkRows &lt; rowStart - keyStart &lt; keys).
    /// </summary>
    public static Tensor KeyBlockWindow(Tensor triangle, long chunkRows, long rowStart, long rows, long keyStart, long keys) =>
        triangle.narrow(0, rowStart - keyStart + chunkRows - 1, rows).narrow(1, 0, keys);

    /// <summary>
    /// A caller's mask (sliced to the step, may be null) and the step's additive band: both apply. A bool mask
    /// becomes additive (-inf where false); a floating mask is added. The result broadcasts to the step's scores.
    /// </summary>
    public static Tensor Combine(Tensor? mask, Tensor band)
    {
        if (mask is null)
        {
            return band;
        }

        if (mask.dtype == ScalarType.Bool)
        {
            using var hidden = mask.logical_not();
            return band.masked_fill(hidden, double.NegativeInfinity);
        }

        return mask.add(band);
    }

    private static long RoundUp(long n) => (n + Alignment - 1) / Alignment * Alignment;

    /// <summary>(height, width) additive mask: 0 where column - row &lt;= <paramref name="diagonal"/>, -inf elsewhere.</summary>
    private static Tensor Triangle(long height, long width, long diagonal, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var column = arange(width, ScalarType.Int64, device).view(1, width);
        var lastVisible = arange(diagonal, diagonal + height, ScalarType.Int64, device).view(height, 1);
        var hidden = column.gt(lastVisible);
        return scope.MoveToOuter(zeros(new[] { height, width }, dtype, device).masked_fill_(hidden, double.NegativeInfinity));
    }
}
