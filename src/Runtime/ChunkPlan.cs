namespace ChunkedAttention;

/// <summary>What <see cref="ChunkedSdpa.Chunked"/> does for given shapes.</summary>
/// <param name="Chunked">Whether the work is split at all (more than one query chunk or key block).</param>
/// <param name="QueryRows">Query rows per chunk (the last chunk may be shorter).</param>
/// <param name="KeyRows">Keys per block (all keys when not blocked).</param>
/// <param name="QueryChunks">Number of query chunks.</param>
/// <param name="KeyBlocks">Number of key blocks per query chunk.</param>
/// <param name="MaxScoreElements">The largest batch*heads*rows*keys any one step holds.</param>
public readonly record struct ChunkPlan(bool Chunked, long QueryRows, long KeyRows,
    long QueryChunks, long KeyBlocks, long MaxScoreElements);
