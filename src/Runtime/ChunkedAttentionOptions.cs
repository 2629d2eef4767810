namespace ChunkedAttention;

/// <summary>
/// Settings for <see cref="ChunkedSdpa"/>: the same settings as <see cref="ChunkedAttentionAttribute"/>.
/// Immutable once built, so one instance can be shared by every thread.
/// </summary>
public sealed class ChunkedAttentionOptions
{
    /// <summary>Query rows per chunk when nothing else is said.</summary>
    public const int DefaultChunkSize = 1024;

    /// <summary>The attribute's defaults: ChunkSize 1024, keys whole, MPS only, no score cap.</summary>
    public static ChunkedAttentionOptions Default { get; } = new();

    /// <summary>Query rows per chunk (&gt; 0).</summary>
    public int ChunkSize { get; init; } = DefaultChunkSize;

    /// <summary>Keys per block: 0 keeps the keys whole; &gt; 0 merges key blocks with an online softmax.</summary>
    public int KeyChunkSize { get; init; }

    /// <summary>Device types on which <see cref="ChunkedSdpa.Attention"/> chunks.</summary>
    public AttentionDevices Devices { get; init; } = AttentionDevices.Mps;

    /// <summary>Cap on batch*heads*rows*keys of one chunk's scores; 0 = no cap.</summary>
    public long MaxScoreElements { get; init; }
}
