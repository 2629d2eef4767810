using System;

namespace ChunkedAttention.Planning;

/// <summary>
/// Turns sizes and settings into the <see cref="ChunkPlan"/> the kernels follow. All arithmetic is in
/// <see cref="long"/> and saturates, so a huge ChunkSize or cap never overflows.
/// </summary>
/// <remarks>
/// The rule, with BH = product of the scores' leading dims (batch x heads):
/// <list type="number">
/// <item>rows = min(ChunkSize, L) (ChunkSize from CHUNKED_ATTENTION_CHUNK_SIZE when set);
/// keys = min(KeyChunkSize, S) when KeyChunkSize &gt; 0, else S (keys whole).</item>
/// <item>With a cap (MaxScoreElements &gt; 0) and BH*rows*keys over it: rows = cap / (BH*keys), never below 1.</item>
/// <item>If even one row is over the cap (BH*keys &gt; cap), the keys are blocked too. With KeyChunkSize = 0 the
/// step is made square-ish, because a single-row step wastes the matrix units:
/// rows = min(rows from step 1, floor(sqrt(cap / BH))), keys = cap / (BH*rows). With an explicit
/// KeyChunkSize the cap wins: rows = 1, keys = cap / BH. Never below 1: when cap &lt; BH one step holds BH elements.</item>
/// </list>
/// </remarks>
internal static class ChunkPlanner
{
    public static ChunkPlan Plan(long scoreBatch, long queryLength, long keyLength,
        ChunkedAttentionOptions options, EnvironmentOverrides environment)
    {
        var chunkSize = environment.ChunkSize ?? options.ChunkSize;
        var rows = Math.Max(1, Math.Min(chunkSize, queryLength));
        var keys = options.KeyChunkSize > 0 ? Math.Min(options.KeyChunkSize, keyLength) : keyLength;
        var cap = options.MaxScoreElements;
        var batch = Math.Max(1, scoreBatch);

        if (cap > 0 && keys > 0 && Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(batch, rows), keys) > cap)
        {
            var perRow = Shapes.SaturatingMultiply(batch, keys);
            if (perRow <= cap)
            {
                rows = Math.Max(1, Math.Min(rows, cap / perRow));
            }
            else if (options.KeyChunkSize == 0)
            {
                var perBatch = Math.Max(1, cap / batch);
                rows = Math.Max(1, Math.Min(rows, (long)Math.Floor(Math.Sqrt(perBatch))));
                keys = Math.Max(1, Math.Min(keyLength, perBatch / rows));
            }
            else
            {
                rows = 1;
                keys = Math.Max(1, Math.Min(keys, cap / batch));
            }
        }

        var queryRows = Math.Min(rows, queryLength);
        var queryChunks = queryLength == 0 ? 0 : CeilDiv(queryLength, rows);
        var keyBlocks = keyLength == 0 ? 1 : CeilDiv(keyLength, keys);
        var maxScores = Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(Math.Max(0, scoreBatch), queryRows), keys);
        return new ChunkPlan(queryChunks > 1 || keyBlocks > 1, queryRows, keys, queryChunks, keyBlocks, maxScores);
    }

    private static long CeilDiv(long a, long b) => (a / b) + (a % b == 0 ? 0 : 1);
}
