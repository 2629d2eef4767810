using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// <see cref="ChunkedSdpa.Chunked"/> with chunks small enough that the test-sized inputs of
/// <see cref="AttentionInputs"/> (L = 7, S = 9) split into several query chunks (and key blocks when asked).
/// </summary>
internal static class SmallChunks
{
    public const int QueryRows = 3;

    public static Tensor Chunked(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false,
        double? scale = null, bool gqa = false, int chunk = QueryRows, int keyChunk = 0, double p = 0) =>
        ChunkedSdpa.Chunked(q, k, v, mask, p, causal, scale, gqa,
            new ChunkedAttentionOptions { ChunkSize = chunk, KeyChunkSize = keyChunk });
}
