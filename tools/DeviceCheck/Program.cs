using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ChunkedAttention.Testing;
using TorchSharp;
using static TorchSharp.torch;

// Runs the runtime's equality suite (tests/Shared/AttentionCases.cs, the same table the CPU tests run) on a
// device in Float32, Float16 and BFloat16, at the unit-test sizes and at device sizes (E = 64, lengths x 37), and
// prints each path's error against native SDPA and against the exact Float64 result. Exit code 0 when every path
// passes, 1 when any fails, 2 for bad arguments.
return DeviceCheckProgram.Run(args);

internal static class DeviceCheckProgram
{
    private const string Usage =
        "usage: ChunkedAttention.DeviceCheck [--device cpu|cuda|mps] [--dtype all|fp32|fp16|bf16]... [--profile small|large|both]\n" +
        "                                    [--filter TEXT] [--verbose]";

    public static int Run(string[] args)
    {
        var deviceName = "cpu";
        var dtypes = new List<ScalarType>();
        List<CaseProfile>? profiles = null;
        string? filter = null;
        var verbose = false;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--device": deviceName = Next(); break;
                    case "--dtype": dtypes.AddRange(ParseDTypes(Next())); break;
                    case "--profile":
                        profiles = Next() switch
                        {
                            "small" => new List<CaseProfile> { CaseProfile.Small },
                            "large" => new List<CaseProfile> { CaseProfile.Large },
                            "both" => new List<CaseProfile> { CaseProfile.Small, CaseProfile.Large },
                            var p => throw new ArgumentException($"--profile: unknown profile '{p}' (small, large, both)"),
                        };
                        break;
                    case "--filter": filter = Next(); break;
                    case "--verbose": verbose = true; break;
                    case "--help" or "-h": Console.WriteLine(Usage); return 0;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        // Half precision on the CPU is slow at device sizes: there the unit-test sizes are the default.
        profiles ??= deviceName == "cpu" ? new List<CaseProfile> { CaseProfile.Small } : new List<CaseProfile> { CaseProfile.Small, CaseProfile.Large };
        if (dtypes.Count == 0)
        {
            dtypes.AddRange(ParseDTypes("all"));
        }

        Device device;
        try
        {
            device = torch.device(deviceName);
            using var probe = ones(1, device: device);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"--device {deviceName}: not usable here: {e.Message.Split('\n')[0]}");
            return 2;
        }

        var cases = AttentionCases.All.Where(c => filter is null || c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
        Console.WriteLine($"ChunkedAttention device check: device {device}{DeviceDescription(device)}, TorchSharp {typeof(torch).Assembly.GetName().Version}, " +
            $"{cases.Count} cases x {dtypes.Count} dtypes x {profiles.Count} profiles");
        Console.WriteLine("Rule: a path passes when its max |error| against the exact Float64 result is at most native's own error " +
            "(where native is right) plus the dtype's slack (fp32 1e-5, fp16 1/512, bf16 1/64), and, in fp32, it is within 1e-5 of native.");

        var clock = Stopwatch.StartNew();
        var failures = 0;
        var summary = new List<string>();
        foreach (var profile in profiles)
        {
            foreach (var dtype in dtypes)
            {
                var results = new List<CaseResult>();
                foreach (var c in cases)
                {
                    var r = CaseCheck.Run(c, profile, dtype, device);
                    results.Add(r);
                    if (!r.Passed || verbose)
                    {
                        Console.WriteLine($"  [{profile.Name}] {CaseCheck.Describe(r)}");
                    }
                }

                var failed = results.Count(r => !r.Passed);
                failures += failed;
                var nativeWrong = results.Where(r => !r.NativeRight).ToList();
                var worst = results.SelectMany(r => r.Paths.Where(p => !p.Path.StartsWith("grad", StringComparison.Ordinal)))
                    .Select(p => p.VsExact).Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Max();
                var gradients = results.SelectMany(r => r.Paths.Where(p => p.Path.StartsWith("grad", StringComparison.Ordinal))).ToList();
                var worstNative = results.SelectMany(r => r.Paths.Where(p => !p.Path.StartsWith("grad", StringComparison.Ordinal))).Select(p => p.VsNative).Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Max();
                var line = $"| {profile.Name} | {Name(dtype)} | {results.Count - failed}/{results.Count} | {CaseCheck.Format(worstNative)} | {CaseCheck.Format(worst)} | {gradients.Count(p => p.Passed)}/{gradients.Count} | {nativeWrong.Count} |";
                summary.Add(line);
                Console.WriteLine($"{profile.Name} {Name(dtype)}: {results.Count - failed}/{results.Count} cases pass; " +
                    $"max |ours - native| {CaseCheck.Format(worstNative)}, max |ours - exact| {CaseCheck.Format(worst)}; native wrong in {nativeWrong.Count}");
                foreach (var r in nativeWrong)
                {
                    var ours = r.Paths.Where(p => !p.Path.StartsWith("grad", StringComparison.Ordinal)).Select(p => p.VsExact).DefaultIfEmpty(double.NaN).Max();
                    Console.WriteLine($"    beyond native: {r.Case.Name}: native {(r.NativeError is null ? "err " + CaseCheck.Format(r.NativeVsExact) : "threw: " + r.NativeError)}, ours err {CaseCheck.Format(ours)}{(r.Passed ? string.Empty : " FAIL")}");
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| profile | dtype | cases passed | max abs diff vs native (where native is right) | max abs diff vs exact fp64 | gradient checks passed | native wrong (beyond native) |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        summary.ForEach(Console.WriteLine);
        Console.WriteLine();
        Console.WriteLine(failures == 0
            ? $"PASS: every case on {device} ({clock.Elapsed.TotalSeconds:F1} s)"
            : $"FAIL: {failures} case/dtype/profile combinations failed on {device} ({clock.Elapsed.TotalSeconds:F1} s)");
        return failures == 0 ? 0 : 1;
    }

    private static IEnumerable<ScalarType> ParseDTypes(string text) => text switch
    {
        "all" => new[] { ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16 },
        "fp32" or "float32" => new[] { ScalarType.Float32 },
        "fp16" or "float16" => new[] { ScalarType.Float16 },
        "bf16" or "bfloat16" => new[] { ScalarType.BFloat16 },
        _ => throw new ArgumentException($"--dtype: unknown dtype '{text}' (all, fp32, fp16, bf16)"),
    };

    private static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => "fp16",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float32 => "fp32",
        _ => dtype.ToString(),
    };

    private static string DeviceDescription(Device device) =>
        device.type == DeviceType.CUDA
            ? string.Create(CultureInfo.InvariantCulture, $" ({cuda.device_count()} CUDA device(s), cuDNN {(cuda.is_cudnn_available() ? "available" : "not available")})")
            : string.Empty;
}
