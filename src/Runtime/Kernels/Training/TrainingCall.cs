using System;
using ChunkedAttention.Masking;
using ChunkedAttention.Validation;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// Everything forward and backward of one training call share apart from tensors: sizes, the step geometry,
/// the compute dtypes, the dropout keys and the hooks. Saved on the autograd context (tensors are saved
/// separately, through <c>save_for_backward</c>, so autograd checks them for in-place changes).
/// </summary>
internal sealed class TrainingCall
{
    /// <param name="problem">The validated call.</param>
    /// <param name="plan">Its plan: rows per chunk and keys per block, followed by forward and backward alike.</param>
    /// <param name="hooks">The hooks of the call, kept for backward (which autograd runs later).</param>
    /// <param name="matmulType">The matmul operands' dtype; null = <see cref="MatmulTypeFor"/> (tests force the
    /// accelerator choice on the CPU).</param>
    public TrainingCall(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks, ScalarType? matmulType = null)
    {
        Scale = problem.Scale;
        IsCausal = problem.IsCausal;
        QueryLength = problem.QueryLength;
        KeyLength = problem.KeyLength;
        QueryRows = Math.Max(1, plan.QueryRows);
        KeyRows = Math.Max(1, plan.KeyRows);
        KeyGroups = HeadGroups.For(problem.KeyRepeats, problem.Key);
        ValueGroups = HeadGroups.For(problem.ValueRepeats, problem.Value);
        ScoreLeading = Shapes.ScoreLeading(problem.Query.shape, problem.Key.shape);
        ScoreBatch = problem.ScoreBatch;
        OutputShape = problem.OutputShape;
        DType = problem.DType;
        Hooks = hooks;
        MaskIsBool = problem.Mask is { } mask && mask.dtype == ScalarType.Bool;

        // Softmax state, probabilities and gradient accumulators: Float32 for half inputs (as flash attention).
        StateType = DType is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : DType;
        MatmulType = matmulType ?? MatmulTypeFor(problem.Query.device_type, DType);

        if (problem.Dropout > 0)
        {
            var (key1, key2) = DropoutKeepMask.DrawKeys();
            Dropout = new DropoutKeepMask(problem.Dropout, key1, key2, ScoreLeading, QueryLength, KeyLength);
        }

        NeedsQueryGrad = problem.Query.requires_grad;
        NeedsKeyGrad = problem.Key.requires_grad;
        NeedsValueGrad = problem.Value.requires_grad;
        NeedsMaskGrad = problem.Mask is { requires_grad: true };
    }

    /// <summary>
    /// Matmul operands: the input dtype on accelerators (their half matmuls accumulate in Float32 and are many times
    /// faster; the softmax statistics, probabilities and accumulators stay Float32); on the CPU, where half matmuls
    /// are no faster, Float32 operands, so that nothing is rounded between the steps.
    /// </summary>
    public static ScalarType MatmulTypeFor(TorchSharp.DeviceType device, ScalarType dtype) =>
        device == TorchSharp.DeviceType.CPU && dtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : dtype;

    public double Scale { get; }
    public bool IsCausal { get; }
    public long QueryLength { get; }
    public long KeyLength { get; }
    public long QueryRows { get; }
    public long KeyRows { get; }
    public HeadGroups KeyGroups { get; }
    public HeadGroups ValueGroups { get; }
    public long[] ScoreLeading { get; }
    public long ScoreBatch { get; }
    public long[] OutputShape { get; }
    public ScalarType DType { get; }
    public ScalarType StateType { get; }
    public ScalarType MatmulType { get; }
    public DropoutKeepMask? Dropout { get; }
    public KernelHooks Hooks { get; }
    public bool MaskIsBool { get; }
    public bool NeedsQueryGrad { get; }
    public bool NeedsKeyGrad { get; }
    public bool NeedsValueGrad { get; }
    public bool NeedsMaskGrad { get; }

    /// <summary>Keys query rows [rowStart, rowStart + rows) can see: all S, or under is_causal those j &lt; rowStart + rows.</summary>
    public long VisibleKeys(long rowStart, long rows) => IsCausal ? Math.Min(KeyLength, rowStart + rows) : KeyLength;

    /// <summary>Rows of chunk [rowStart, rowStart + rows) for the step at <paramref name="keyStart"/>: false when the
    /// causal band hides the whole block from every row of the chunk (the step is skipped).</summary>
    public bool Visible(long rowStart, long rows, long keyStart) => keyStart < VisibleKeys(rowStart, rows);

    /// <summary>The query rows of a chunk, scaled and in the matmul dtype (scale folded into q once per chunk).</summary>
    public Tensor ScaledQuery(Tensor query, long rowStart, long rows)
    {
        var q = query.narrow(-2, rowStart, rows);
        var scaled = q.to(StateType).mul(Scale);
        return scaled.dtype == MatmulType ? scaled : scaled.to(MatmulType);
    }

    /// <summary>Rows [start, start + count) of a key or value, in the matmul dtype.</summary>
    public Tensor Operand(Tensor keyOrValue, long start, long count)
    {
        var block = keyOrValue.narrow(-2, start, count);
        return block.dtype == MatmulType ? block : block.to(MatmulType);
    }

    /// <summary>
    /// The step's scores in <see cref="StateType"/>: (q·scale)·kᵀ, plus the caller's mask (bool: -inf where false)
    /// and the causal band at the step's offsets. The one definition forward and backward both use.
    /// </summary>
    public Tensor Scores(Tensor scaledQuery, Tensor keyBlock, Tensor? mask, long rowStart, long rows, long keyStart, long keys)
    {
        Hooks.OnStep?.Invoke(new AttentionStep(rowStart, rows, keyStart, keys,
            Shapes.SaturatingMultiply(Shapes.SaturatingMultiply(ScoreBatch, rows), keys)));

        var scores = KeyGroups.QueryHeadsTimesShared(scaledQuery, keyBlock.transpose(-2, -1));
        if (scores.dtype != StateType)
        {
            scores = scores.to(StateType);
        }

        if (MaskSlicer.Slice(mask, rowStart, rows, keyStart, keys) is { } stepMask)
        {
            if (MaskIsBool)
            {
                using var hidden = stepMask.logical_not();
                scores.masked_fill_(hidden, double.NegativeInfinity);
            }
            else
            {
                scores.add_(stepMask);
            }
        }

        if (IsCausal && !CausalBand.IsFullyVisible(rowStart, keyStart, keys))
        {
            using var hidden = AboveDiagonal(rowStart, rows, keyStart, keys, scores.device);
            scores.masked_fill_(hidden, double.NegativeInfinity);
        }

        return scores;
    }

    /// <summary>
    /// (rows, keys) bools, true where key j is hidden from row i: j &gt; i at the step's offsets (PyTorch's top-left
    /// causal rule, as <see cref="CausalBand"/> states it), built per step, never for the whole L x S.
    /// </summary>
    private static Tensor AboveDiagonal(long rowStart, long rows, long keyStart, long keys, Device device)
    {
        using var rowIndex = arange(rowStart, rowStart + rows, dtype: ScalarType.Int64, device: device);
        using var keyIndex = arange(keyStart, keyStart + keys, dtype: ScalarType.Int64, device: device);
        using var column = rowIndex.unsqueeze(1);
        return keyIndex.gt(column);
    }

    /// <summary>Weights (N..., Hq, rows, keys) times a value block (N..., Hkv, keys, Ev), in the matmul dtype, result in <see cref="StateType"/>.</summary>
    public Tensor TimesValue(Tensor weights, Tensor valueBlock)
    {
        var operand = weights.dtype == MatmulType ? weights : weights.to(MatmulType);
        var product = ValueGroups.QueryHeadsTimesShared(operand, valueBlock);
        return product.dtype == StateType ? product : product.to(StateType);
    }
}
