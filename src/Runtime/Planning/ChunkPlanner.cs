using System;
using TorchSharp;

namespace ChunkedAttention.Planning;

/// <summary>
/// Turns sizes and settings into the <see cref="ChunkPlan"/> the kernels follow. All arithmetic is in
/// <see cref="long"/> and saturates, so a huge ChunkSize or cap never overflows.
/// </summary>
/// <remarks>
/// The rule, with BH = product of the scores' leading dims (batch x heads):
/// <list type="number">
/// <item>keys = min(KeyChunkSize, S) when KeyChunkSize &gt; 0, else S (keys whole).</item>
/// <item>ChunkSize &gt; 0 (or CHUNKED_ATTENTION_CHUNK_SIZE set): rows = min(ChunkSize, L); with a cap
/// (MaxScoreElements &gt; 0) and BH*rows*keys over it, rows = cap / (BH*keys), never below 1.</item>
/// <item>ChunkSize = 0 (auto): the budget is MaxScoreElements, or when that is 0 <see cref="DefaultScoreBudget"/>
/// (MPS's per-array limits in the query's dtype). The query rows are split into the fewest equal chunks whose
/// BH*rows*keys fits the budget: n = ceil(L / floor(budget / (BH*keys))) chunks of ceil(L / n) rows, so no chunking
/// at all where the whole fits (4096 rows under a 3000-row limit are two chunks of 2048, not 3000 + 1096).</item>
/// <item>If even one row is over the budget (BH*keys &gt; budget), the keys are blocked too. With KeyChunkSize = 0
/// the step is made square-ish, because a single-row step wastes the matrix units:
/// rows = min(rows, floor(sqrt(budget / BH))), keys = budget / (BH*rows) (auto: both then evened out into the
/// fewest equal parts). With an explicit KeyChunkSize the budget wins: rows = 1, keys = budget / BH. Never below 1:
/// when the budget is below BH one step holds BH elements.</item>
/// </list>
/// </remarks>
internal static class ChunkPlanner
{
    /// <summary>MPS's limits on one array: at most 2^31 elements and 2^32 bytes.</summary>
    public const long MpsMaxElements = 1L << 31;

    /// <summary>See <see cref="MpsMaxElements"/>.</summary>
    public const long MpsMaxBytes = 1L << 32;

    /// <summary>
    /// The step budget of auto chunking when MaxScoreElements is 0: the most score elements one array may hold on MPS
    /// in the query's dtype, min(2^31, 2^32 / element size): 2^31 for Float16/BFloat16, 2^30 for Float32, 2^29 for Float64.
    /// </summary>
    public static long DefaultScoreBudget(torch.ScalarType dtype) => Math.Min(MpsMaxElements, MpsMaxBytes / ElementSize(dtype));

    public static ChunkPlan Plan(long scoreBatch, long queryLength, long keyLength, torch.ScalarType dtype,
        ChunkedAttentionOptions options, EnvironmentOverrides environment)
    {
        long chunkSize = environment.ChunkSize ?? options.ChunkSize;
        var auto = chunkSize == 0;
        var keys = options.KeyChunkSize > 0 ? Math.Min(options.KeyChunkSize, keyLength) : keyLength;
        var budget = options.MaxScoreElements > 0 ? options.MaxScoreElements : auto ? DefaultScoreBudget(dtype) : 0;
        var batch = Math.Max(1, scoreBatch);
        var rows = auto ? Math.Max(1, queryLength) : Math.Max(1, Math.Min(chunkSize, queryLength));

        if (budget > 0 && keys > 0 && Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(batch, rows), keys) > budget)
        {
            var perRow = Shapes.SaturatingMultiply(batch, keys);
            if (perRow <= budget)
            {
                rows = Math.Max(1, Math.Min(rows, budget / perRow));
            }
            else if (options.KeyChunkSize == 0)
            {
                var perBatch = Math.Max(1, budget / batch);
                rows = Math.Max(1, Math.Min(rows, (long)Math.Floor(Math.Sqrt(perBatch))));
                keys = Math.Max(1, Math.Min(keyLength, perBatch / rows));
                if (auto)
                {
                    keys = Even(keyLength, keys);
                }
            }
            else
            {
                rows = 1;
                keys = Math.Max(1, Math.Min(keys, budget / batch));
            }

            if (auto)
            {
                rows = Even(queryLength, rows);
            }
        }

        var queryRows = Math.Min(rows, queryLength);
        var queryChunks = queryLength == 0 ? 0 : CeilDiv(queryLength, rows);
        var keyBlocks = keyLength == 0 ? 1 : CeilDiv(keyLength, keys);
        var maxScores = Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(Math.Max(0, scoreBatch), queryRows), keys);
        return new ChunkPlan(queryChunks > 1 || keyBlocks > 1, queryRows, keys, queryChunks, keyBlocks, maxScores);
    }

    /// <summary>The size of the fewest equal parts of <paramref name="length"/> no larger than <paramref name="limit"/>.</summary>
    private static long Even(long length, long limit) => length <= 0 ? limit : CeilDiv(length, CeilDiv(length, limit));

    private static long ElementSize(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 => 2,
        torch.ScalarType.Float64 => 8,
        _ => 4,
    };

    private static long CeilDiv(long a, long b) => (a / b) + (a % b == 0 ? 0 : 1);
}
