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
    /// need the fix where <see cref="NativeLeavesMaskedRows"/>); the key-block kernel computes zeros there itself.
    /// <paramref name="chunked"/>: native SDPA runs more than once, so what native would redo per call (a bool mask's
    /// conversion to an additive one, padding a mask's rows to aligned strides) is done here once instead; on CUDA
    /// that is done for a single call too (see <see cref="ForNative"/>).
    /// Tensors made here belong to the caller's dispose scope.
    /// </summary>
    public static CallMask Prepare(AttentionProblem problem, bool nativeSteps, bool chunked = false)
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

        var device = problem.Query.device_type;
        var hidden = nativeSteps && NativeLeavesMaskedRows(device, problem.DType)
            ? RowsWithoutKeys(mask, problem.IsCausal, problem.QueryLength)
            : null;
        if (mask.dtype != ScalarType.Bool && mask.dtype != problem.DType && device != DeviceType.CPU)
        {
            mask = ToDType(mask, problem.DType);
        }

        // CUDA's kernels want every mask row 16-byte aligned (PyTorch pads a misaligned mask on every call, and a
        // bool (L, S) mask with S = 333 on Float16 faulted with "misaligned address" on an H200): there the mask is
        // always made additive and aligned once per call; on MPS only when native runs several times. The CPU keeps
        // the caller's mask: its kernel took the bool regional mask faster than the additive one (cross-attention
        // L=4096 S=77 in 4 chunks: 1.08-1.11x native with bool, 1.22-1.39x with the additive form).
        var cuda = device == DeviceType.CUDA;
        if (nativeSteps && (cuda || (chunked && device != DeviceType.CPU)))
        {
            mask = ForNative(mask, problem.DType, aligned: cuda);
        }

        return new CallMask(mask, hidden, null);
    }

    /// <summary>
    /// Whether native SDPA on this device and dtype may leave a row that sees no key non-zero: cuDNN's Float16/BFloat16
    /// kernel does on CUDA (seen on an H200, torch 2.11, cuDNN 9.19); MPS is not known to give zeros. The CPU kernel and
    /// CUDA's Float32/Float64 kernels give zeros.
    /// </summary>
    public static bool NativeLeavesMaskedRows(DeviceType device, ScalarType dtype) => device switch
    {
        DeviceType.CPU => false,
        DeviceType.CUDA => dtype is ScalarType.Float16 or ScalarType.BFloat16,
        _ => true,
    };

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

    /// <summary>
    /// The mask as native SDPA takes it best: a bool mask as an additive one in the query's dtype (0 where true, -inf
    /// where false; native would convert it on every call), and, when <paramref name="aligned"/>, with its key dim
    /// padded so every row starts 16 elements aligned. The padding (zeros) is never used: the result is a view of the
    /// first S columns.
    /// </summary>
    private static Tensor ForNative(Tensor mask, ScalarType dtype, bool aligned)
    {
        var isBool = mask.dtype == ScalarType.Bool;
        var keys = mask.size(-1);
        var rowsAligned = !aligned || mask.dim() < 2 || mask.size(-2) == 1 || mask.stride(-2) % CausalBand.Alignment == 0;
        if (!isBool && mask.stride(-1) == 1 && rowsAligned)
        {
            return mask;
        }

        var shape = mask.shape;
        var padded = (long[])shape.Clone();
        if (aligned)
        {
            padded[^1] = (keys + CausalBand.Alignment - 1) / CausalBand.Alignment * CausalBand.Alignment;
        }

        using var buffer = zeros(padded, isBool ? dtype : mask.dtype, mask.device);
        var result = buffer.narrow(-1, 0, keys);
        result.copy_(mask);
        // A bool mask copied is 1 where it may attend and 0 elsewhere: log gives 0 and -inf.
        return isBool ? result.log_() : result;
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
