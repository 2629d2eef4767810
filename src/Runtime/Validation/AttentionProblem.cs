using static TorchSharp.torch;

namespace ChunkedAttention.Validation;

/// <summary>
/// One validated attention call: the caller's tensors plus every size the planner and kernels need.
/// Built only by <see cref="AttentionValidator"/>, so a kernel never sees inconsistent inputs.
/// </summary>
internal sealed class AttentionProblem
{
    internal AttentionProblem(Tensor query, Tensor key, Tensor value, Tensor? mask, double dropout, bool isCausal,
        double scale, bool scaleIsDefault, long keyRepeats, long valueRepeats, long[] outputShape, long scoreBatch)
    {
        Query = query;
        Key = key;
        Value = value;
        Mask = mask;
        Dropout = dropout;
        IsCausal = isCausal;
        Scale = scale;
        ScaleIsDefault = scaleIsDefault;
        KeyRepeats = keyRepeats;
        ValueRepeats = valueRepeats;
        OutputShape = outputShape;
        ScoreBatch = scoreBatch;
        QueryLength = query.size(-2);
        KeyLength = key.size(-2);
        HeadDim = query.size(-1);
    }

    public Tensor Query { get; }
    public Tensor Key { get; }
    public Tensor Value { get; }

    /// <summary>The caller's mask, unsliced: bool (true = may attend) or floating (added to the scores).</summary>
    public Tensor? Mask { get; }

    public double Dropout { get; }
    public bool IsCausal { get; }

    /// <summary>The factor applied to q·k: the caller's scale, or 1/sqrt(E).</summary>
    public double Scale { get; }

    /// <summary>True when <see cref="Scale"/> is the 1/sqrt(E) native SDPA applies by itself.</summary>
    public bool ScaleIsDefault { get; }

    /// <summary>How often each key head is repeated (interleaved) for grouped-query attention; 1 = none.</summary>
    public long KeyRepeats { get; }

    /// <summary>How often each value head is repeated (interleaved) for grouped-query attention; 1 = none.</summary>
    public long ValueRepeats { get; }

    /// <summary>The result's shape: the broadcast leading dims, then (L, Ev).</summary>
    public long[] OutputShape { get; }

    /// <summary>Product of the leading dims (batch x heads) of the q·kᵀ scores, so one row of keys holds ScoreBatch*S elements.</summary>
    public long ScoreBatch { get; }

    /// <summary>L.</summary>
    public long QueryLength { get; }

    /// <summary>S.</summary>
    public long KeyLength { get; }

    /// <summary>E.</summary>
    public long HeadDim { get; }

    public ScalarType DType => Query.dtype;

    /// <summary>
    /// The factor the query must be multiplied by so that native SDPA, which always scales by 1/sqrt(E),
    /// ends up applying <see cref="Scale"/>; null when no multiplication is needed.
    /// </summary>
    public double? NativeQueryMultiplier =>
        ScaleIsDefault || HeadDim == 0 ? null : Scale * System.Math.Sqrt(HeadDim);
}
