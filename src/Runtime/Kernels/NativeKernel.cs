using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// One native SDPA call with the adaptations TorchSharp's binding lacks: <c>scale</c> (the query is
/// pre-multiplied by scale*sqrt(E), since native always scales by 1/sqrt(E)), <c>enable_gqa</c> (key/value heads
/// repeated interleaved) and causal together with a mask (merged into one mask; TorchSharp throws otherwise), and
/// with the call's mask prepared as for every kernel (<see cref="Masking.CallMask"/>). It is the query-chunk kernel
/// with one chunk of all L rows. Used for the non-chunking paths of <see cref="ChunkedSdpa.Attention"/> and
/// <see cref="ChunkedSdpa.Native"/>.
/// </summary>
internal static class NativeKernel
{
    /// <summary>
    /// The one rule of what TorchSharp's own SDPA computes as PyTorch does: no explicit scale, no grouped-query
    /// heads, and not causal together with a mask. Exactly the three cases the kernels adapt.
    /// </summary>
    public static bool RunsAsIs(bool hasMask, bool isCausal, bool hasScale, bool enableGqa) =>
        !hasScale && !enableGqa && !(isCausal && hasMask);

    /// <summary>Attention over the whole problem in one native call. Temporaries belong to the caller's dispose scope.</summary>
    public static Tensor Run(AttentionProblem problem, KernelHooks hooks) =>
        QueryChunkKernel.Run(problem, problem.QueryLength, hooks);
}
