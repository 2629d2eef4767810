namespace ChunkedAttention;

/// <summary>
/// What <see cref="ChunkedSdpa.Chunked(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor?, double, bool, double?, bool, ChunkedAttentionOptions?)"/>
/// does for given shapes and settings, as returned by <see cref="ChunkedSdpa.Plan"/>.
/// </summary>
/// <param name="Chunked">Whether the work is split at all (more than one query chunk or key block).</param>
/// <param name="QueryRows">Query rows per chunk, the effective chunk size (the last chunk may be shorter); 0 when L = 0.</param>
/// <param name="KeyRows">Keys per block (all S keys when not blocked).</param>
/// <param name="QueryChunks">Number of query chunks: ceil(L / QueryRows).</param>
/// <param name="KeyBlocks">Number of key blocks per query chunk: ceil(S / KeyRows); 1 when the keys stay whole.
/// Under <c>is_causal</c> blocks entirely above the diagonal are skipped, so a chunk may visit fewer.</param>
/// <param name="MaxScoreElements">The largest batch*heads*rows*keys any one step holds (an upper bound under <c>is_causal</c>).</param>
public readonly record struct ChunkPlan(bool Chunked, long QueryRows, long KeyRows,
    long QueryChunks, long KeyBlocks, long MaxScoreElements);
