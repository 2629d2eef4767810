using ChunkedAttention.Validation;
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
    /// <summary>True when autograd would record this call: grad mode is on and an input requires grad.</summary>
    public static bool Applies(AttentionProblem problem) =>
        is_grad_enabled() &&
        (problem.Query.requires_grad || problem.Key.requires_grad || problem.Value.requires_grad ||
         problem.Mask is { requires_grad: true });

    public static Tensor Run(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks) =>
        ChunkedAttentionFunction.Apply(problem.Query, problem.Key, problem.Value, problem.Mask,
            new TrainingCall(problem, plan, hooks));
}
