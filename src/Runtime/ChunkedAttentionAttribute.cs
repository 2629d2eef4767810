using System;

namespace ChunkedAttention;

/// <summary>
/// Marks an attention class or struct (it and its containing types <c>partial</c>). The
/// ChunkedAttention source generator adds a private static <c>ChunkedScaledDotProductAttention</c>
/// method with TorchSharp's SDPA parameters that chunks the query rows where <see cref="Devices"/>
/// says so and calls native SDPA everywhere else.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false)]
public sealed class ChunkedAttentionAttribute : Attribute
{
    /// <summary>Creates the attribute with the default settings.</summary>
    public ChunkedAttentionAttribute()
    {
    }

    /// <summary>Creates the attribute with a query chunk size.</summary>
    /// <param name="chunkSize">Query rows per chunk; 0 = auto.</param>
    public ChunkedAttentionAttribute(int chunkSize)
    {
        ChunkSize = chunkSize;
    }

    /// <summary>
    /// Query rows per chunk; 0 (the default, <see cref="ChunkedAttentionOptions.DefaultChunkSize"/>) is auto: the fewest
    /// equal chunks whose scores fit <see cref="MaxScoreElements"/>, or MPS's per-array limits when that is 0.
    /// </summary>
    public int ChunkSize { get; set; } = ChunkedAttentionOptions.DefaultChunkSize;

    /// <summary>Keys per block: 0 keeps the keys whole; &gt; 0 merges key blocks with an online softmax.</summary>
    public int KeyChunkSize { get; set; }

    /// <summary>Device types on which chunking applies. Default <see cref="ChunkedAttentionOptions.DefaultDevices"/> (MPS).</summary>
    public AttentionDevices Devices { get; set; } = ChunkedAttentionOptions.DefaultDevices;

    /// <summary>Cap on batch*heads*rows*keys of one chunk's scores; 0 = no cap.</summary>
    public long MaxScoreElements { get; set; }

    /// <summary>
    /// Try native SDPA first and chunk only when it fails with an MPS size error, remembering that per
    /// shape (see <see cref="ChunkedAttentionOptions.TryNativeFirst"/>). Default false.
    /// </summary>
    public bool TryNativeFirst { get; set; }
}
