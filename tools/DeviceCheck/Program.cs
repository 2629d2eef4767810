using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ChunkedAttention.Testing;
using TorchSharp;
using static TorchSharp.torch;

// Runs the runtime's equality suite (tests/Shared/AttentionCases.cs, the same table the CPU tests run) on a
// device in Float32, Float16 and BFloat16, at the unit-test sizes and at device sizes (E = 64, lengths x 37), and
// prints each path's error against native SDPA and against the exact Float64 result. Exit code 0 when every path
// passes, 1 when any fails, 2 for bad arguments.
//
// Off the CPU each profile and dtype runs in a child process: a device fault (a CUDA kernel error poisons the
// whole process) then costs one case, not the run. The child says before each call whose call it is; when it dies,
// the parent records the fault against native ("native faulted": held to the exact result, beyond native) or
// against the runtime (a failure) and starts a new child after it.
return DeviceCheckProgram.Run(args);

internal static class DeviceCheckProgram
{
    private const string Usage =
        "usage: ChunkedAttention.DeviceCheck [--device cpu|cuda|mps] [--dtype all|fp32|fp16|bf16]... [--profile small|large|both]\n" +
        "                                    [--filter TEXT] [--verbose] [--in-process]";

    public static int Run(string[] args)
    {
        var deviceName = "cpu";
        var dtypes = new List<ScalarType>();
        List<CaseProfile>? profiles = null;
        string? filter = null;
        var verbose = false;
        var inProcess = false;
        int? childStart = null;
        int? skipNative = null;
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
                    case "--in-process": inProcess = true; break;
                    case "--child-start": childStart = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--child-skip-native": skipNative = int.Parse(Next(), CultureInfo.InvariantCulture); break;
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

        var cases = AttentionCases.All.Where(c => filter is null || c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
        if (childStart is { } start)
        {
            return RunChild(deviceName, profiles[0], dtypes[0], cases, start, skipNative);
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

        var isolate = !inProcess && device.type != DeviceType.CPU;
        Console.WriteLine($"ChunkedAttention device check: device {device}{DeviceDescription(device)}, TorchSharp {typeof(torch).Assembly.GetName().Version}, " +
            $"{cases.Count} cases x {dtypes.Count} dtypes x {profiles.Count} profiles{(isolate ? ", each profile and dtype in a child process" : string.Empty)}");
        Console.WriteLine("Rule: a path passes when its max |error| against the exact Float64 result is at most native's own error " +
            "(where native is right) plus the dtype's slack (fp32 1e-5; fp16 1/512, bf16 1/64; twice that for key blocks), and, in fp32, it is within 1e-5 of native.");

        var clock = Stopwatch.StartNew();
        var failures = 0;
        var summary = new List<string>();
        foreach (var profile in profiles)
        {
            foreach (var dtype in dtypes)
            {
                var rows = isolate
                    ? RunIsolated(deviceName, profile, dtype, filter, cases, verbose)
                    : cases.Select((c, i) => Row.Of(i, CaseCheck.Run(c, profile, dtype, device))).ToList();
                if (!isolate)
                {
                    foreach (var r in rows.Where(r => !r.Passed || verbose))
                    {
                        Console.WriteLine($"  [{profile.Name}] {r.Description}");
                    }
                }

                var failed = rows.Count(r => !r.Passed);
                failures += failed;
                var nativeWrong = rows.Where(r => !r.NativeRight).ToList();
                var worst = rows.Select(r => r.VsExact).Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Max();
                var worstNative = rows.Select(r => r.VsNative).Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Max();
                var line = $"| {profile.Name} | {Name(dtype)} | {rows.Count - failed}/{cases.Count} | {CaseCheck.Format(worstNative)} | {CaseCheck.Format(worst)} | " +
                    $"{rows.Sum(r => r.GradientsPassed)}/{rows.Sum(r => r.Gradients)} | {nativeWrong.Count} |";
                summary.Add(line);
                Console.WriteLine($"{profile.Name} {Name(dtype)}: {rows.Count - failed}/{cases.Count} cases pass; " +
                    $"max |ours - native| {CaseCheck.Format(worstNative)}, max |ours - exact| {CaseCheck.Format(worst)}; native wrong in {nativeWrong.Count}");
                foreach (var r in nativeWrong)
                {
                    Console.WriteLine($"    beyond native: {r.Name}: native {r.NativeNote}, ours err {CaseCheck.Format(r.VsExact)}{(r.Passed ? string.Empty : " FAIL")}");
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

    /// <summary>The child: cases from <paramref name="start"/> on, one RESULT line each, STEP lines before each call.</summary>
    private static int RunChild(string deviceName, CaseProfile profile, ScalarType dtype, List<AttentionCase> cases, int start, int? skipNative)
    {
        var device = torch.device(deviceName);
        for (var i = start; i < cases.Count; i++)
        {
            var index = i;
            var result = CaseCheck.Run(cases[i], profile, dtype, device, step => Console.WriteLine($"STEP {index} {step}"),
                skipNative == i ? "faulted (the device error ended the process; not run again)" : null);
            Console.WriteLine(Row.Of(i, result).Serialize());
        }

        return 0;
    }

    /// <summary>Runs one profile and dtype in child processes, restarting after a fault.</summary>
    private static List<Row> RunIsolated(string deviceName, CaseProfile profile, ScalarType dtype, string? filter, List<AttentionCase> cases, bool verbose)
    {
        var rows = new List<Row>();
        var start = 0;
        int? skipNative = null;
        while (start < cases.Count)
        {
            var info = ChildStart(deviceName, profile, dtype, filter, start, skipNative);
            using var child = Process.Start(info)!;
            var errors = child.StandardError.ReadToEndAsync();
            (int Index, string Step)? last = null;
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                if (line.StartsWith("STEP ", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', 3);
                    last = (int.Parse(parts[1], CultureInfo.InvariantCulture), parts[2]);
                }
                else if (Row.TryParse(line, out var row))
                {
                    rows.Add(row);
                    if (!row.Passed || verbose)
                    {
                        Console.WriteLine($"  [{profile.Name}] {row.Description}");
                    }
                }
            }

            child.WaitForExit();
            if (child.ExitCode == 0)
            {
                break;
            }

            var fault = errors.Result.Split('\n').FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))?.Trim() ?? $"exit {child.ExitCode}";
            if (last is not { } at)
            {
                Console.WriteLine($"  [{profile.Name}] {Name(dtype)}: child process ended before any case ({fault}); stopping this dtype");
                rows.Add(new Row(start, cases[start].Name, false, false, double.NaN, double.NaN, double.NaN, 0, 0, "child ended: " + fault, "not run"));
                break;
            }

            if (at.Step.StartsWith("native", StringComparison.Ordinal) && skipNative != at.Index)
            {
                Console.WriteLine($"  [{profile.Name}] {cases[at.Index].Name} [{dtype}]: native SDPA ({at.Step}) brought the process down ({fault}); rerunning the case without it");
                start = at.Index;
                skipNative = at.Index;
            }
            else
            {
                Console.WriteLine($"  [{profile.Name}] {cases[at.Index].Name} [{dtype}]: FAIL: the runtime brought the process down in step '{at.Step}' ({fault})");
                rows.Add(new Row(at.Index, cases[at.Index].Name, false, false, double.NaN, double.NaN, double.NaN, 0, 0, $"{cases[at.Index].Name}: runtime fault in '{at.Step}': {fault}", "not compared"));
                start = at.Index + 1;
                skipNative = null;
            }
        }

        return rows;
    }

    private static ProcessStartInfo ChildStart(string deviceName, CaseProfile profile, ScalarType dtype, string? filter, int start, int? skipNative)
    {
        var self = Environment.ProcessPath ?? "dotnet";
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            info.ArgumentList.Add(typeof(DeviceCheckProgram).Assembly.Location);
        }

        foreach (var arg in new[] { "--device", deviceName, "--profile", profile.Name, "--dtype", Name(dtype), "--child-start", start.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(arg);
        }

        if (filter is not null)
        {
            info.ArgumentList.Add("--filter");
            info.ArgumentList.Add(filter);
        }

        if (skipNative is { } skip)
        {
            info.ArgumentList.Add("--child-skip-native");
            info.ArgumentList.Add(skip.ToString(CultureInfo.InvariantCulture));
        }

        return info;
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

    /// <summary>One case's outcome, as the summary needs it (and as a child reports it on one line).</summary>
    private sealed record Row(int Index, string Name, bool Passed, bool NativeRight, double NativeVsExact, double VsNative, double VsExact,
        int GradientsPassed, int Gradients, string Description, string NativeNote)
    {
        private const char Separator = '\u001f';

        public static Row Of(int index, CaseResult r)
        {
            var forward = r.Paths.Where(p => !p.Path.StartsWith("grad", StringComparison.Ordinal)).ToList();
            var gradients = r.Paths.Where(p => p.Path.StartsWith("grad", StringComparison.Ordinal)).ToList();
            double Max(IEnumerable<double> values) => values.Where(x => !double.IsNaN(x)).DefaultIfEmpty(double.NaN).Max();
            var note = r.NativeError is not null ? "threw/faulted: " + r.NativeError : "err " + CaseCheck.Format(r.NativeVsExact);
            return new Row(index, r.Case.Name, r.Passed, r.NativeRight, r.NativeVsExact, Max(forward.Select(p => p.VsNative)),
                Max(forward.Select(p => p.VsExact)), gradients.Count(p => p.Passed), gradients.Count, CaseCheck.Describe(r), note);
        }

        public string Serialize() => "RESULT" + Separator + string.Join(Separator.ToString(), new object[]
        {
            Index, Name, Passed, NativeRight, R(NativeVsExact), R(VsNative), R(VsExact), GradientsPassed, Gradients, Description, NativeNote,
        }.Select(o => Convert.ToString(o, CultureInfo.InvariantCulture)));

        public static bool TryParse(string line, out Row row)
        {
            row = null!;
            var parts = line.Split(Separator);
            if (parts.Length != 12 || parts[0] != "RESULT")
            {
                return false;
            }

            double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);
            row = new Row(int.Parse(parts[1], CultureInfo.InvariantCulture), parts[2], bool.Parse(parts[3]), bool.Parse(parts[4]), D(parts[5]), D(parts[6]),
                D(parts[7]), int.Parse(parts[8], CultureInfo.InvariantCulture), int.Parse(parts[9], CultureInfo.InvariantCulture), parts[10], parts[11]);
            return true;
        }

        private static string R(double x) => x.ToString("R", CultureInfo.InvariantCulture);
    }
}
