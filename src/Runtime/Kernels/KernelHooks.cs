using System;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>TorchSharp's SDPA signature: (query, key, value, attn_mask, p, is_causal).</summary>
internal delegate Tensor NativeSdpa(Tensor query, Tensor key, Tensor value, Tensor? attnMask, double p, bool isCausal);

/// <summary>One unit of kernel work: a native call on a query chunk, or one key block of the online softmax.</summary>
/// <param name="QueryStart">First query row.</param>
/// <param name="QueryRows">Query rows.</param>
/// <param name="KeyStart">First key.</param>
/// <param name="KeyRows">Keys.</param>
/// <param name="ScoreElements">batch*heads*rows*keys of this step's q·kᵀ scores.</param>
internal readonly record struct AttentionStep(long QueryStart, long QueryRows, long KeyStart, long KeyRows, long ScoreElements);

/// <summary>
/// The seam between the planner-driven loops and the outside world: which native SDPA to call and who
/// watches the steps. Production code uses <see cref="Default"/>; tests and benchmarks inject a counting
/// observer or a native call that fails like MPS does.
/// </summary>
internal sealed class KernelHooks
{
    public static KernelHooks Default { get; } = new();

    /// <summary>The native SDPA; TorchSharp's by default.</summary>
    public NativeSdpa Native { get; init; } = static (q, k, v, mask, p, causal) =>
        nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal);

    /// <summary>Called before every step; null = nobody watches.</summary>
    public Action<AttentionStep>? OnStep { get; init; }

    /// <summary>Where <see cref="ChunkedAttentionOptions.TryNativeFirst"/> remembers shapes native failed on.</summary>
    public NativeFailureCache FailureCache { get; init; } = NativeFailureCache.Shared;
}
