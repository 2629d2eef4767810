using ChunkedAttention.Validation;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// The chunked path when gradients are needed (grad mode on and query, key, value or a floating mask requires
/// grad): forward and backward both in steps of the plan, saving only O(L) row statistics, so training holds one
/// step's scores at a time just as inference does. Without gradients the inference kernels run unchanged.
/// </summary>
/// <remarks>
/// Results and gradients equal native SDPA's (see <see cref="ChunkedAttentionFunction"/>). Dropout uses the
/// keep-mask of <see cref="DropoutKeepMask"/>, identical in forward and backward; its draws differ from native's
/// (as between any two dropout calls). A floating mask that requires grad gets its gradient too (dMask = dS summed
/// over its broadcast dims).
/// </remarks>
internal static class TrainingKernel
{
    /// <summary>
    /// Whether a chunked call's gradients go through this kernel: autograd would record the call, and native SDPA's
    /// own backward would keep more than row statistics per step. Always for key blocks (autograd would keep every
    /// block's weights); for query chunks wherever native has no fused backward (<see cref="NativeBackwardIsFused"/>).
    /// </summary>
    public static bool Applies(AttentionProblem problem, ChunkPlan plan) =>
        NeedsGradients(problem) &&
        (plan.KeyBlocks > 1 || !NativeBackwardIsFused(problem.Query.device_type, problem.DType));

    /// <summary>True when autograd would record this call: grad mode is on and an input requires grad.</summary>
    public static bool NeedsGradients(AttentionProblem problem) =>
        is_grad_enabled() &&
        (problem.Query.requires_grad || problem.Key.requires_grad || problem.Value.requires_grad ||
         problem.Mask is { requires_grad: true });

    /// <summary>
    /// Whether native SDPA's backward on a query chunk saves only the output and row log-sum-exp: CUDA's flash,
    /// memory-efficient and cuDNN kernels do for Float16, BFloat16 and Float32, so there native per chunk already
    /// trains within one step's memory, at native's speed (H200, fp16, L = S = 16384: 1.2x native forward + backward,
    /// against 18x and 19x the memory when every step is recomputed op by op). MPS, the CPU's kernels (math fallback
    /// with a mask or dropout) and Float64 are assumed to keep the chunk's probabilities.
    /// </summary>
    internal static bool NativeBackwardIsFused(DeviceType device, ScalarType dtype) =>
        device == DeviceType.CUDA && dtype is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32;

    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks) =>
        ChunkedAttentionFunction.Apply(problem.Query, problem.Key, problem.Value, problem.Mask,
            new TrainingCall(problem, plan, hooks));
}
