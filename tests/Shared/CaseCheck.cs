using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Testing;

/// <summary>How one path of the runtime did on one case.</summary>
/// <param name="Path">chunked (ChunkedSdpa.Chunked), guard-chunks (Attention with the device among its Devices)
/// or guard-native (Attention on a device outside its Devices: the native path).</param>
/// <param name="VsNative">max |ours - native| (NaN when native failed or gave NaN).</param>
/// <param name="VsExact">max |ours - exact Float64|.</param>
/// <param name="Allowed">The largest <paramref name="VsExact"/> that passes.</param>
/// <param name="Passed">Whether the path passed.</param>
/// <param name="Error">The exception's message when the path threw.</param>
public sealed record PathResult(string Path, double VsNative, double VsExact, double Allowed, bool Passed, string? Error);

/// <summary>One case on one device in one dtype: native's own error and each path's.</summary>
/// <param name="Case">The case.</param>
/// <param name="DType">The inputs' dtype.</param>
/// <param name="NativeVsExact">max |native - exact| (NaN when native gave NaN).</param>
/// <param name="NativeRight">Native is within the dtype's tolerance of the exact result; when false the paths are
/// held to the exact result alone (what the runtime does beyond native).</param>
/// <param name="NativeError">The exception's message when native threw.</param>
/// <param name="Paths">Each path's result.</param>
public sealed record CaseResult(AttentionCase Case, ScalarType DType, double NativeVsExact, bool NativeRight, string? NativeError,
    IReadOnlyList<PathResult> Paths)
{
    /// <summary>Every path passed.</summary>
    public bool Passed => Paths.All(p => p.Passed);
}

/// <summary>
/// The pass rule shared by the CPU tests and the device check. Results are compared with the exact Float64 result
/// (<see cref="ReferenceAttention.Exact"/>) and with native SDPA on the same device and dtype:
/// <list type="bullet">
/// <item>Native is <em>right</em> when it is finite where the exact result is and within <see cref="NativeBound"/>
/// of it. Then a path passes when its error is at most native's own plus <see cref="Slack"/>, and (Float32) it is
/// within <see cref="Slack"/> of native itself.</item>
/// <item>Where native is wrong (e.g. cuDNN's NaN for a Float32 mask on a half query, or non-zero rows a bool mask
/// hides entirely, or it throws or faults) a path passes when it is within <see cref="NativeBound"/> (or, if larger,
/// <see cref="Slack"/>) of the exact result: as close as native must be to count as right.</item>
/// </list>
/// Gradients (cases with <see cref="AttentionCase.Gradients"/>) follow the same rule on each input's gradient,
/// with the tolerances scaled by the largest exact gradient.
/// </summary>
public static class CaseCheck
{
    /// <summary>One unit in the last place of values in [2, 4) (outputs here are averages of normal values, below 4).</summary>
    public static double Ulp(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => 1.0 / 64,
        ScalarType.Float16 => 1.0 / 512,
        ScalarType.Float64 => 1e-12,
        _ => 1e-6,
    };

    /// <summary>
    /// How far above native's own error (or, where native is wrong, from the exact result) a path may be: fp32 1e-5;
    /// half precision one ulp, two for key blocks (they run q·kᵀ and p·v in the half dtype, so the scores are rounded
    /// to it, as in PyTorch's math backend, where native's fused kernels keep them in Float32).
    /// </summary>
    public static double Slack(ScalarType dtype, bool keyBlocks = false) =>
        dtype == ScalarType.Float32 ? 1e-5 : (keyBlocks ? 2 : 1) * Ulp(dtype);

    /// <summary>The error up to which native counts as right.</summary>
    public static double NativeBound(ScalarType dtype) => dtype == ScalarType.Float32 ? 1e-4 : 2 * Ulp(dtype);

    /// <summary>The device's own flag in <see cref="AttentionDevices"/>.</summary>
    public static AttentionDevices DeviceFlag(Device device) => device.type switch
    {
        DeviceType.CUDA => AttentionDevices.Cuda,
        DeviceType.MPS => AttentionDevices.Mps,
        _ => AttentionDevices.Cpu,
    };

    /// <summary>Runs a case through every path on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    /// <param name="c">The case.</param>
    /// <param name="profile">The sizes.</param>
    /// <param name="dtype">The inputs' dtype.</param>
    /// <param name="device">The device.</param>
    /// <param name="progress">Told "native" before native SDPA runs and "ours" before the runtime's paths do (a device
    /// check running cases in a child process learns from it which call brought the process down).</param>
    /// <param name="nativeSkipped">Why native is not run (it brought a process down before); null = run it.</param>
    public static CaseResult Run(AttentionCase c, CaseProfile profile, ScalarType dtype, Device device,
        Action<string>? progress = null, string? nativeSkipped = null)
    {
        using var scope = NewDisposeScope();
        using var t = c.Build(profile, dtype, device);
        var exact = c.RunExact(t, profile);

        Tensor? native = null;
        string? nativeError = nativeSkipped;
        if (nativeSkipped is null)
        {
            try
            {
                progress?.Invoke("native");
                using (no_grad())
                {
                    native = c.RunNative(t, profile);
                    // Device errors surface at the next synchronising call: make it this one.
                    native.sum().to(CPU).Dispose();
                }
            }
            catch (Exception e)
            {
                nativeError = FirstLine(e.Message);
                if (device.type == DeviceType.CUDA)
                {
                    // A call that threw may still have launched kernels that fault later: surface that here, while the
                    // last step reported is native's (a fault ends the process; a device check's parent records it).
                    // Synchronising is not enough: cuDNN's failed attention graph for an (L, 1) Float16 mask leaves a
                    // sticky "misaligned address" that only the next operation reports (H200, cuDNN 9.19), so probe.
                    cuda.synchronize();
                    using var probe = ones(1, device: device);
                    probe.sum().to(CPU).Dispose();
                }
            }
        }

        progress?.Invoke("ours");

        var nativeVsExact = native is null ? double.NaN : ReferenceAttention.MaxAbsDiff(native, exact);
        var nativeRight = native is not null && nativeVsExact <= NativeBound(dtype);
        var keyBlocks = ChunkedSdpa.Plan(t.Query, t.Key, c.Options(profile)).KeyBlocks > 1;
        var slack = Slack(dtype, keyBlocks);
        // Where native is wrong the exact result is the reference: a path passes within the error native is allowed
        // (or the key blocks' slack, when larger).
        var allowed = nativeRight ? nativeVsExact + slack : Math.Max(NativeBound(dtype), slack);

        var flag = DeviceFlag(device);
        var elsewhere = AttentionDevices.All & ~flag;
        var paths = new List<PathResult>
        {
            Check("chunked", () => c.RunChunked(t, profile)),
            Check("guard-chunks", () => c.RunAttention(t, profile, flag)),
            Check("guard-native", () => c.RunAttention(t, profile, elsewhere)),
        };

        if (c.Gradients)
        {
            paths.AddRange(CheckGradients(c, profile, t, dtype, keyBlocks, runNative: nativeSkipped is null, device, progress));
        }

        return new CaseResult(c, dtype, nativeVsExact, nativeRight, nativeError, paths);

        PathResult Check(string path, Func<Tensor> run)
        {
            try
            {
                using var inner = NewDisposeScope();
                Tensor ours;
                progress?.Invoke("ours " + path);
                using (no_grad())
                {
                    ours = run();
                }

                Synchronize(device);

                var vsExact = ReferenceAttention.MaxAbsDiff(ours, exact);
                var vsNative = nativeRight ? ReferenceAttention.MaxAbsDiff(ours, native!) : double.NaN;
                var passed = ours.dtype == dtype && vsExact <= allowed
                    && (dtype != ScalarType.Float32 || !nativeRight || vsNative <= slack);
                return new PathResult(path, vsNative, vsExact, allowed, passed, ours.dtype == dtype ? null : $"dtype {ours.dtype}, expected {dtype}");
            }
            catch (Exception e)
            {
                return new PathResult(path, double.NaN, double.NaN, allowed, false, FirstLine(e.Message));
            }
        }
    }

    /// <summary>Gradients of sum(out * w) for query, key and value: chunked and native against exact Float64 autograd.</summary>
    private static IEnumerable<PathResult> CheckGradients(AttentionCase c, CaseProfile profile, CaseTensors t, ScalarType dtype, bool keyBlocks, bool runNative,
        Device device, Action<string>? progress)
    {
        using var scope = NewDisposeScope();
        var exactLeaves = new[] { t.Query, t.Key, t.Value }.Select(x => x.detach().to(ScalarType.Float64, CPU).requires_grad_(true)).ToArray();
        var exactOut = ReferenceAttention.ExactFromFloat64(exactLeaves[0], exactLeaves[1], exactLeaves[2], t.Mask, c.Causal, c.ScaleAt(profile), c.Gqa);
        var weights = randn(exactOut.shape, ScalarType.Float64, generator: new Generator(c.Seed + 1));
        (exactOut * weights).sum().backward();
        var exactGrads = exactLeaves.Select(x => x.grad!).ToArray();

        Tensor[]? Grads(string step, Func<CaseTensors, Tensor> run, out string? error)
        {
            try
            {
                progress?.Invoke(step);
                var leaves = t.WithGrad();
                var output = run(leaves);
                (output * weights.to(output.dtype, output.device)).sum().backward();
                Synchronize(device);
                error = null;
                return new[] { leaves.Query.grad!, leaves.Key.grad!, leaves.Value.grad! };
            }
            catch (Exception e)
            {
                error = FirstLine(e.Message);
                return null;
            }
        }

        var nativeGrads = runNative ? Grads("native gradients", x => c.RunNative(x, profile), out _) : null;
        var chunkedGrads = Grads("ours gradients", x => c.RunChunked(x, profile), out var chunkedError);
        var names = new[] { "query", "key", "value" };
        for (var i = 0; i < 3; i++)
        {
            var magnitude = Math.Max(1.0, exactGrads[i].abs().max().item<double>());
            var slack = Slack(dtype, keyBlocks) * magnitude;
            var nativeErr = nativeGrads is null ? double.NaN : ReferenceAttention.MaxAbsDiff(nativeGrads[i], exactGrads[i]);
            var nativeRight = nativeErr <= NativeBound(dtype) * magnitude;
            var allowed = nativeRight ? nativeErr + slack : Math.Max(NativeBound(dtype) * magnitude, slack);
            if (chunkedGrads is null)
            {
                yield return new PathResult($"grad {names[i]}", double.NaN, double.NaN, allowed, false, chunkedError);
                continue;
            }

            var vsExact = ReferenceAttention.MaxAbsDiff(chunkedGrads[i], exactGrads[i]);
            var vsNative = nativeRight ? ReferenceAttention.MaxAbsDiff(chunkedGrads[i], nativeGrads![i]) : double.NaN;
            var passed = vsExact <= allowed && (dtype != ScalarType.Float32 || !nativeRight || vsNative <= slack);
            yield return new PathResult($"grad {names[i]}", vsNative, vsExact, allowed, passed, null);
        }
    }

    /// <summary>A one-line summary of a result (failures and native's misses show their figures).</summary>
    public static string Describe(CaseResult r)
    {
        var native = r.NativeError is not null ? $"native threw: {r.NativeError}"
            : r.NativeRight ? $"native err {Format(r.NativeVsExact)}" : $"native WRONG (err {Format(r.NativeVsExact)}; held to the exact result)";
        var paths = string.Join("; ", r.Paths.Select(p =>
            $"{p.Path} {(p.Passed ? "ok" : "FAIL")} err {Format(p.VsExact)} (allowed {Format(p.Allowed)}), vs native {Format(p.VsNative)}" +
            (p.Error is null ? string.Empty : $" [{p.Error}]")));
        return $"{r.Case.Name} [{r.DType}]: {native}; {paths}";
    }

    /// <summary>Writes a difference compactly.</summary>
    public static string Format(double value) =>
        double.IsNaN(value) ? "-" : value.ToString("0.0E+0", CultureInfo.InvariantCulture);

    // Device errors surface at the next synchronising call: on CUDA each step synchronises, so a fault is attributed
    // to the step that caused it (a device check's parent reads the last step a child reported).
    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            cuda.synchronize();
        }
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n')[0].Trim();
        return line.Length > 200 ? line.Substring(0, 200) + "..." : line;
    }
}
