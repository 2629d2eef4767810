using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>TorchSharp's SDPA signature: (query, key, value, attn_mask, p, is_causal).</summary>
internal delegate Tensor NativeSdpa(Tensor query, Tensor key, Tensor value, Tensor? attnMask, double p, bool isCausal);
