using ChunkedAttention.Validation;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Masking;

/// <summary>
/// The caller's mask as the kernels of one call use it, decided once per call (never per chunk), plus the rows the
/// result must have whatever a device's native kernel computes there:
/// <list type="bullet">
/// <item>A floating mask whose dtype differs from the query's (Float32 on a Float16/BFloat16 query) is converted to the
/// query's dtype off the CPU: cuDNN's fused kernel returns NaN everywhere for that mix. Finite values beyond the
/// dtype's range are clamped to its largest finite value, so a large finite penalty stays finite (as in Float32)
/// instead of turning into -inf; infinities stay. The CPU's native kernel computes the mix exactly, so it keeps it.</item>
/// <item>A mask that broadcasts over the keys (key dim 1, e.g. (B, 1, L, 1)) adds the same value to every score of a
/// row, which softmax ignores: the kernels run without it, and the rows it hides (false, or -inf) become zeros, rows
/// with NaN or +inf become NaN, as native computes them. (Native CUDA refuses such a mask: "(*bias): last dimension
/// must be contiguous".)</item>
/// <item>Rows that see no key (every key masked, with the causal band) are zeros on every device and dtype. Off the
/// CPU the native kernels do not promise that (cuDNN's Float16/BFloat16 kernel returns non-zero rows for a bool mask
/// that hides a whole row), so native-based kernels there zero those rows after the call: beyond native.</item>
/// </list>
/// </summary>
internal sealed class CallMask
{
    private CallMask(Tensor? mask, Tensor? hiddenRows, Tensor? nanRows)
    {
        Mask = mask;
        HiddenRows = hiddenRows;
        NaNRows = nanRows;
    }

    /// <summary>The mask the kernels slice and pass on; null when there is none or it was dropped (key dim 1).</summary>
    public Tensor? Mask { get; }

    /// <summary>Bool (..., L or 1, 1): rows that see no key and must be zeros; null when none need fixing.</summary>
    public Tensor? HiddenRows { get; }

    /// <summary>Bool (..., L or 1, 1): rows a dropped per-row mask makes NaN (NaN or +inf there).</summary>
    public Tensor? NaNRows { get; }

    /// <summary>
    /// Decides the call's mask. <paramref name="nativeSteps"/>: the kernel runs native SDPA (whose fully masked rows
    /// need the fix off the CPU); the key-block kernel computes zeros there itself.
    /// Tensors made here belong to the caller's dispose scope.
    /// </summary>
    public static CallMask Prepare(AttentionProblem problem, bool nativeSteps)
    {
        var mask = problem.Mask;
        if (mask is null)
        {
            return new CallMask(null, null, null);
        }

        if (mask.size(-1) == 1 && problem.KeyLength > 1)
        {
            // One value per row: softmax(s + c) = softmax(s); only non-finite values change the row.
            return mask.dtype == ScalarType.Bool
                ? new CallMask(null, mask.logical_not(), null)
                : new CallMask(null, mask.isneginf(), mask.isnan().logical_or(mask.isposinf()));
        }

        var onCpu = problem.Query.device_type == DeviceType.CPU;
        if (mask.dtype != ScalarType.Bool && mask.dtype != problem.DType && !onCpu)
        {
            mask = ToDType(mask, problem.DType);
        }

        var hidden = nativeSteps && !onCpu ? RowsWithoutKeys(mask, problem.IsCausal, problem.QueryLength) : null;
        return new CallMask(mask, hidden, null);
    }

    /// <summary>Gives the rows fixed by this call's mask their values, in place; returns <paramref name="output"/>.</summary>
    public Tensor Finish(Tensor output)
    {
        if (HiddenRows is not null)
        {
            output.masked_fill_(HiddenRows, 0.0);
        }

        if (NaNRows is not null)
        {
            output.masked_fill_(NaNRows, double.NaN);
        }

        return output;
    }

    /// <summary>The mask in <paramref name="dtype"/>: finite values clamped to its finite range, infinities and NaN kept.</summary>
    internal static Tensor ToDType(Tensor mask, ScalarType dtype)
    {
        var limit = dtype switch
        {
            ScalarType.Float16 => 65504.0,
            ScalarType.BFloat16 => 3.3895313892515355e38,
            _ => double.PositiveInfinity,
        };
        if (double.IsInfinity(limit))
        {
            return mask.to(dtype);
        }

        using var clamped = mask.clamp(-limit, limit);
        using var infinite = mask.isinf();
        using var kept = where(infinite, mask, clamped);
        return kept.to(dtype);
    }

    /// <summary>
    /// Bool (..., L or 1, 1), true for rows with no visible key: none of the mask's keys, or, under causal, none of
    /// keys 0..i (the first visible key comes after the row's diagonal).
    /// </summary>
    private static Tensor RowsWithoutKeys(Tensor mask, bool isCausal, long queryLength)
    {
        using var scope = NewDisposeScope();
        var visible = mask.dtype == ScalarType.Bool ? mask : mask.isneginf().logical_not();
        var any = visible.any(-1, keepdim: true);
        if (!isCausal)
        {
            return scope.MoveToOuter(any.logical_not());
        }

        // argmax returns the first of equal maxima: the first visible key of each row.
        var first = visible.to(ScalarType.Byte).argmax(-1, keepdim: true);
        var row = arange(queryLength, ScalarType.Int64, mask.device).view(queryLength, 1);
        var seesOne = any.logical_and(first.le(row));
        return scope.MoveToOuter(seesOne.logical_not());
    }
}
