using static TorchSharp.torch;

namespace ChunkedAttention.Validation;

/// <summary>
/// One validated attention call: the caller's tensors plus every size the planner and kernels need.
/// Built only by <see cref="AttentionValidator"/>, so a kernel never sees inconsistent inputs.
/// </summary>
/// <param name="Query">(N..., Hq, L, E).</param>
/// <param name="Key">(N..., Hkv, S, E).</param>
/// <param name="Value">(N..., Hkv, S, Ev).</param>
/// <param name="Mask">The caller's mask, unsliced: bool (true = may attend) or floating (added to the scores).</param>
/// <param name="Dropout">Dropout probability in [0, 1).</param>
/// <param name="IsCausal">Top-left causal band on top of <paramref name="Mask"/>.</param>
/// <param name="Scale">The factor applied to q·k: the caller's scale, or 1/sqrt(E).</param>
/// <param name="ScaleIsDefault">True when <paramref name="Scale"/> is the 1/sqrt(E) native SDPA applies by itself.</param>
/// <param name="KeyRepeats">How often each key head is repeated (interleaved) for grouped-query attention; 1 = none.</param>
/// <param name="ValueRepeats">How often each value head is repeated (interleaved) for grouped-query attention; 1 = none.</param>
/// <param name="OutputShape">The result's shape: the broadcast leading dims, then (L, Ev).</param>
/// <param name="ScoreBatch">Product of the leading dims (batch x heads) of the q·kᵀ scores, so one row of keys
/// holds ScoreBatch*S elements.</param>
internal sealed record AttentionProblem(Tensor Query, Tensor Key, Tensor Value, Tensor? Mask, double Dropout,
    bool IsCausal, double Scale, bool ScaleIsDefault, long KeyRepeats, long ValueRepeats, long[] OutputShape,
    long ScoreBatch)
{
    /// <summary>L.</summary>
    public long QueryLength { get; } = Query.size(-2);

    /// <summary>S.</summary>
    public long KeyLength { get; } = Key.size(-2);

    /// <summary>E.</summary>
    public long HeadDim { get; } = Query.size(-1);

    public ScalarType DType => Query.dtype;

    /// <summary>
    /// The factor the query must be multiplied by so that native SDPA, which always scales by 1/sqrt(E),
    /// ends up applying <see cref="Scale"/>; null when no multiplication is needed.
    /// </summary>
    public double? NativeQueryMultiplier =>
        ScaleIsDefault || HeadDim == 0 ? null : Scale * System.Math.Sqrt(HeadDim);
}
