using System;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention;

/// <summary>Scaled dot-product attention computed in query chunks (and optionally key blocks).</summary>
public static class ChunkedSdpa
{
    /// <summary>Device-guarded attention: chunks only where <see cref="ShouldChunk"/> says so, else native SDPA.</summary>
    public static Tensor Attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
        double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
        ChunkedAttentionOptions? options = null) => throw new NotImplementedException();

    /// <summary>Always chunked, whatever the device.</summary>
    public static Tensor Chunked(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
        double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
        ChunkedAttentionOptions? options = null) => throw new NotImplementedException();

    /// <summary>Whether <see cref="Attention"/> would chunk for these tensors.</summary>
    public static bool ShouldChunk(Tensor query, Tensor key, ChunkedAttentionOptions? options = null) => throw new NotImplementedException();

    /// <summary>What <see cref="Chunked"/> would do for these shapes.</summary>
    public static ChunkPlan Plan(Tensor query, Tensor key, ChunkedAttentionOptions? options = null) => throw new NotImplementedException();
}
