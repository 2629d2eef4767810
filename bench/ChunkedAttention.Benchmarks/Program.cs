using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ChunkedAttention;
using ChunkedAttention.Benchmarks;
using TorchSharp;
using static TorchSharp.torch;

// Timing: paired runs in this process (baseline, candidate and, where the candidate calls native SDPA in steps,
// its floor rotate their order every pair so drift hits all); each reported ratio is the median of the per-pair
// ratios. On CUDA the clock runs between torch.cuda.synchronize() calls, over a batch of back-to-back calls for
// short cases (DeviceClock).
// Memory: on the CPU each variant runs once in a fresh child process that reports its RSS high-water mark
// (VmHWM). Training cases there also report extra memory: the child first runs the variant on a 256 x 256 problem
// (libraries, thread pools and allocator arenas are then in place), allocates the case's inputs and upstream
// gradient, resets the high-water mark (/proc/self/clear_refs, 5) and reads VmRSS as the baseline; extra = VmHWM
// after forward + backward minus that baseline, the memory the call needed on top of what existed before it. On CUDA one child process runs every case with PyTorch's cudaMallocAsync backend and reads the CUDA
// memory pool's used-memory high-water mark (CudaMemoryPool), reported as the peak above the inputs.
return BenchmarkProgram.Run(args);

internal static class BenchmarkProgram
{
    private const string Usage =
        "usage: ChunkedAttention.Benchmarks [--device cpu|cuda|mps] [--dtype fp32|fp16|bf16] [--suite NAME]... [--case NAME]...\n" +
        "                                   [--no-memory] [--no-decode] [--decode-only] [--markdown FILE] [--once]\n" +
        "suites: cpu (default on cpu), gpu, seed, experiments, training, cpu-training (default on cuda: gpu, seed); decode overhead runs unless --no-decode";

    public static int Run(string[] args)
    {
        if (args.Length == 4 && args[0] == "--measure-memory")
            return MeasureMemoryInThisProcess(args[1], Enum.Parse<Variant>(args[2]), Enum.Parse<ScalarType>(args[3]));

        var selected = new List<BenchmarkCase>();
        var suites = new List<string>();
        bool memory = true, decode = true, memoryChild = false, once = false, decodeOnly = false;
        string? markdownPath = null;
        string deviceName = "cpu";
        string? dtypeName = null;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--no-memory": memory = false; break;
                    case "--no-decode": decode = false; break;
                    case "--memory-child": memoryChild = true; break;
                    case "--once": once = true; break;
                    case "--decode-only": decodeOnly = true; break;
                    case "--markdown": markdownPath = Next(); break;
                    case "--device": deviceName = Next(); break;
                    case "--dtype": dtypeName = Next(); break;
                    case "--suite": suites.Add(Next()); break;
                    case "--case":
                        string name = Next();
                        selected.Add(Suites.Every.FirstOrDefault(c => c.Name == name)
                            ?? throw new ArgumentException($"--case: unknown case '{name}'. Cases: {string.Join(", ", Suites.Every.Select(c => c.Name))}"));
                        break;
                    case "--help" or "-h":
                        Console.WriteLine(Usage);
                        return 0;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }

            foreach (string suite in suites)
                selected.AddRange(Suites.Named(suite));
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        Device device = torch.device(deviceName);
        var clock = new DeviceClock(device);
        ScalarType dtype = dtypeName switch
        {
            null => clock.IsCuda ? ScalarType.Float16 : ScalarType.Float32,
            "fp32" or "float32" => ScalarType.Float32,
            "fp16" or "float16" => ScalarType.Float16,
            "bf16" or "bfloat16" => ScalarType.BFloat16,
            _ => throw new ArgumentException($"--dtype: unknown dtype '{dtypeName}' (fp32, fp16, bf16)"),
        };
        if (decodeOnly)
        {
            DecodeOverhead.Run(clock, dtype).ToList().ForEach(Console.WriteLine);
            return 0;
        }

        if (selected.Count == 0)
            selected.AddRange(clock.IsCuda ? Suites.Gpu.Concat(Suites.Seed) : Suites.Cpu);

        if (memoryChild)
            return MeasureDeviceMemoryInThisProcess(selected, clock, dtype);

        if (once)
            return RunOnce(selected, clock, dtype);

        Console.WriteLine(clock.IsCuda
            ? $"ChunkedAttention benchmarks on {device} ({cuda.device_count()} device(s)), {Name(dtype)}, no grad unless a training case; host: {Environment.ProcessorCount} cores"
            : $"ChunkedAttention benchmarks on CPU: {Environment.ProcessorCount} cores, {get_num_threads()} torch threads, {Name(dtype)}, no grad unless a training case");
        var rows = new List<ResultRow>();
        foreach (BenchmarkCase benchmark in selected)
        {
            Console.WriteLine($"- {benchmark.Name}: {benchmark.Description}");
            ResultRow row;
            try
            {
                row = Time(benchmark, clock, dtype);
            }
            catch (Exception e)
            {
                Console.WriteLine($"  FAILED: {e.Message.Split('\n')[0]}");
                continue;
            }

            if (memory && !clock.IsCuda)
            {
                row = row with
                {
                    BaselineMemory = MeasureMemoryInChild(benchmark, benchmark.Baseline, dtype),
                    CandidateMemory = MeasureMemoryInChild(benchmark, benchmark.Candidate, dtype),
                    MemoryBaselineMemory = benchmark.MemoryBaseline is Variant v ? MeasureMemoryInChild(benchmark, v, dtype) : null,
                };
            }

            rows.Add(row);
            Console.WriteLine("  " + row.Summary());
        }

        if (memory && clock.IsCuda && rows.Count > 0)
            rows = AddDeviceMemory(rows, deviceName, dtype);

        string table = ResultRow.Table(rows, clock.IsCuda);
        Console.WriteLine();
        Console.WriteLine(table);
        var report = new List<string> { table };
        if (decode)
        {
            Console.WriteLine();
            var overhead = DecodeOverhead.Run(clock, dtype);
            overhead.ToList().ForEach(Console.WriteLine);
            report.Add(string.Empty);
            report.AddRange(overhead);
        }

        if (markdownPath is not null) File.WriteAllText(markdownPath, string.Join(Environment.NewLine, report) + Environment.NewLine);
        bool allMet = rows.All(r => r.Met);
        Console.WriteLine(allMet ? "All targets met." : "Some targets missed (see the table).");
        return 0;
    }

    private static ResultRow Time(BenchmarkCase benchmark, DeviceClock clock, ScalarType dtype)
    {
        using var noGrad = benchmark.Training ? null : no_grad();
        using AttentionInputs inputs = benchmark.CreateInputs(clock.Device, dtype);
        // Warm-up pair: also the accuracy check of the candidate against the baseline.
        double maxDifference;
        using (var warmUp = NewDisposeScope())
        {
            Tensor warmBaseline = benchmark.Run(benchmark.Baseline, inputs);
            Tensor warmCandidate = benchmark.Run(benchmark.Candidate, inputs);
            using var difference = (warmCandidate.to(ScalarType.Float32) - warmBaseline.to(ScalarType.Float32)).abs().max();
            maxDifference = difference.ToSingle();
        }

        using NativeCallRecorder? floor = clock.IsCuda || benchmark.FloorTarget is not null ? benchmark.RecordFloor(inputs) : null;
        var variants = new List<Variant> { benchmark.Baseline, benchmark.Candidate };
        if (floor is not null)
            variants.Add(Variant.Floor);

        // Calls per timed batch, from one synchronized call of the baseline (device only).
        int reps = clock.RepsFor(clock.Time(() => benchmark.Run(benchmark.Baseline, inputs, floor), 1));
        var times = variants.ToDictionary(v => v, _ => new List<double>());
        var ratios = new List<double>();
        var floorRatios = new List<double>();
        for (int pair = 0; pair < benchmark.Runs; pair++)
        {
            var measured = new Dictionary<Variant, double>();
            for (int j = 0; j < variants.Count; j++)
            {
                Variant v = variants[(j + pair) % variants.Count];
                measured[v] = clock.Time(() => benchmark.Run(v, inputs, floor), reps);
            }

            foreach (var (v, t) in measured)
                times[v].Add(t);
            ratios.Add(measured[benchmark.Candidate] / measured[benchmark.Baseline]);
            if (floor is not null)
                floorRatios.Add(measured[benchmark.Candidate] / measured[Variant.Floor]);
        }

        return new ResultRow(benchmark, Median(times[benchmark.Baseline]), Median(times[benchmark.Candidate]), Median(ratios), maxDifference)
        {
            FloorMs = floor is not null ? Median(times[Variant.Floor]) : null,
            FloorRatio = floor is not null ? Median(floorRatios) : null,
            FloorCalls = floor?.Count,
            Reps = reps,
            Plan = PlanOf(benchmark, inputs),
        };
    }

    /// <summary>Each case's baseline and candidate once after a warm-up pair (for a profiler's kernel list).</summary>
    private static int RunOnce(List<BenchmarkCase> cases, DeviceClock clock, ScalarType dtype)
    {
        foreach (BenchmarkCase benchmark in cases)
        {
            using var noGrad = benchmark.Training ? null : no_grad();
            using AttentionInputs inputs = benchmark.CreateInputs(clock.Device, dtype);
            foreach (Variant v in new[] { benchmark.Baseline, benchmark.Candidate, benchmark.Baseline, benchmark.Candidate })
            {
                using Tensor output = benchmark.Run(v, inputs);
                clock.Synchronize();
            }

            Console.WriteLine($"{benchmark.Name}: ran {benchmark.Baseline} and {benchmark.Candidate} twice each (warm-up, then the profiled pair)");
        }

        return 0;
    }

    private static string? PlanOf(BenchmarkCase benchmark, AttentionInputs inputs)
    {
        if (benchmark.Candidate != Variant.Chunked && benchmark.Candidate != Variant.Guard)
            return null;
        try
        {
            ChunkPlan p = ChunkedSdpa.Plan(inputs.Query, inputs.Key, benchmark.Options);
            return p.KeyBlocks > 1
                ? $"{p.QueryChunks}x{p.QueryRows} rows, {p.KeyBlocks}x{p.KeyRows} keys"
                : $"{p.QueryChunks}x{p.QueryRows} rows";
        }
        catch (ArgumentException e)
        {
            return "plan: " + e.Message.Split('.')[0];
        }
    }

    /// <summary>Runs every case's variants once in a child process that allocates from the CUDA memory pool (see CudaMemoryPool).</summary>
    private static List<ResultRow> AddDeviceMemory(List<ResultRow> rows, string deviceName, ScalarType dtype)
    {
        string self = Environment.ProcessPath ?? "dotnet";
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            info.ArgumentList.Add(typeof(BenchmarkProgram).Assembly.Location);
        info.Environment[CudaMemoryPool.AllocatorVariable] = CudaMemoryPool.AsyncBackend;
        foreach (string arg in new[] { "--memory-child", "--device", deviceName, "--dtype", Name(dtype) })
            info.ArgumentList.Add(arg);
        foreach (ResultRow row in rows)
        {
            info.ArgumentList.Add("--case");
            info.ArgumentList.Add(row.Case.Name);
        }

        using Process child = Process.Start(info)!;
        var errors = child.StandardError.ReadToEndAsync();
        var peaks = new Dictionary<(string, Variant), double>();
        string? line;
        while ((line = child.StandardOutput.ReadLine()) is not null)
        {
            string[] parts = line.Split(' ');
            if (parts.Length == 4 && parts[0] == "MEM")
                peaks[(parts[1], Enum.Parse<Variant>(parts[2]))] = double.Parse(parts[3], CultureInfo.InvariantCulture);
            else
                Console.WriteLine("  memory: " + line);
        }

        child.WaitForExit();
        if (child.ExitCode != 0)
            Console.Error.WriteLine($"  device memory measurement failed (exit {child.ExitCode}): {errors.Result.Trim().Split('\n')[0]}");

        MemoryFigure? Peak(ResultRow r, Variant? v) =>
            v is Variant x && peaks.TryGetValue((r.Case.Name, x), out double mib) ? new MemoryFigure(mib, null) : null;
        return rows.Select(r => r with
        {
            BaselineMemory = Peak(r, r.Case.Baseline),
            CandidateMemory = Peak(r, r.Case.Candidate),
            MemoryBaselineMemory = Peak(r, r.Case.MemoryBaseline),
        }).ToList();
    }

    private static int MeasureDeviceMemoryInThisProcess(List<BenchmarkCase> cases, DeviceClock clock, ScalarType dtype)
    {
        if (!clock.IsCuda || !CudaMemoryPool.InUse)
        {
            Console.Error.WriteLine($"--memory-child needs --device cuda and {CudaMemoryPool.AllocatorVariable}={CudaMemoryPool.AsyncBackend}");
            return 2;
        }

        foreach (BenchmarkCase benchmark in cases)
        {
            using var noGrad = benchmark.Training ? null : no_grad();
            using AttentionInputs inputs = benchmark.CreateInputs(clock.Device, dtype);
            var variants = new[] { benchmark.Baseline, benchmark.Candidate }.Concat(benchmark.MemoryBaseline is Variant m ? new[] { m } : Array.Empty<Variant>());
            foreach (Variant v in variants.Distinct())
            {
                try
                {
                    benchmark.Run(v, inputs).Dispose(); // warm-up: library workspaces are not the call's memory
                    clock.Synchronize();
                    CudaMemoryPool.ResetPeak();
                    ulong before = CudaMemoryPool.CurrentBytes();
                    using (Tensor output = benchmark.Run(v, inputs))
                        clock.Synchronize();
                    double mib = (CudaMemoryPool.PeakBytes() - before) / (1024.0 * 1024.0);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"MEM {benchmark.Name} {v} {mib:F1}"));
                }
                catch (Exception e)
                {
                    Console.WriteLine($"{benchmark.Name} {v}: {e.Message.Split('\n')[0]}");
                }
            }
        }

        return 0;
    }

    private static MemoryFigure? MeasureMemoryInChild(BenchmarkCase benchmark, Variant variant, ScalarType dtype)
    {
        string self = Environment.ProcessPath ?? "dotnet";
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            info.ArgumentList.Add(typeof(BenchmarkProgram).Assembly.Location);
        info.ArgumentList.Add("--measure-memory");
        info.ArgumentList.Add(benchmark.Name);
        info.ArgumentList.Add(variant.ToString());
        info.ArgumentList.Add(dtype.ToString());
        using Process child = Process.Start(info)!;
        var errors = child.StandardError.ReadToEndAsync();
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string[] figures = output.Trim().Split(' ');
        if (child.ExitCode != 0 || !double.TryParse(figures[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double mib))
        {
            Console.Error.WriteLine($"  memory measurement of {benchmark.Name}/{variant} failed: {errors.Result.Trim()}");
            return null;
        }

        double? extra = figures.Length > 1 ? double.Parse(figures[1], CultureInfo.InvariantCulture) : null;
        return new MemoryFigure(mib, extra);
    }

    /// <summary>The CPU memory child: prints the RSS high-water mark in MiB, and for training cases the extra memory after it.</summary>
    private static int MeasureMemoryInThisProcess(string caseName, Variant variant, ScalarType dtype)
    {
        BenchmarkCase benchmark = Suites.Every.First(c => c.Name == caseName);
        if (!benchmark.Training)
        {
            using var noGrad = no_grad();
            using AttentionInputs inputs = benchmark.CreateInputs(CPU, dtype);
            using Tensor output = benchmark.Run(variant, inputs);
            Console.WriteLine(ResidentMiB("VmHWM:").ToString("F0", CultureInfo.InvariantCulture));
            return 0;
        }

        // Warm-up on a small problem: code, thread pools and allocator arenas are not the call's memory.
        BenchmarkCase small = benchmark with { QueryRows = 256, KeyRows = 256 };
        using (AttentionInputs warmInputs = small.CreateInputs(CPU, dtype))
        using (Tensor warm = small.Run(variant, warmInputs))
        {
        }

        using AttentionInputs trainingInputs = benchmark.CreateInputs(CPU, dtype);
        File.WriteAllText("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
        double baseline = ResidentMiB("VmRSS:");
        using (Tensor gradient = benchmark.Run(variant, trainingInputs))
        {
        }

        double peak = ResidentMiB("VmHWM:");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{peak:F0} {peak - baseline:F0}"));
        return 0;
    }

    /// <summary>A line of /proc/self/status in MiB: VmHWM (the RSS high-water mark, kept by the OS, not the GC) or VmRSS.</summary>
    private static double ResidentMiB(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
        throw new PlatformNotSupportedException("Peak memory is read from /proc/self/status (Linux only).");
    }

    internal static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => "fp16",
        ScalarType.BFloat16 => "bf16",
        _ => "fp32",
    };

    internal static double Median(List<double> values)
    {
        double[] sorted = values.OrderBy(v => v).ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}

/// <summary>
/// One variant's memory: the peak (the child's RSS high-water mark on the CPU; on CUDA the pool's peak above the
/// inputs) and, for CPU training cases, the extra memory over the process's resident memory once the inputs exist.
/// </summary>
internal sealed record MemoryFigure(double PeakMiB, double? ExtraMiB)
{
    public override string ToString() => ExtraMiB is double e
        ? string.Create(CultureInfo.InvariantCulture, $"{PeakMiB:F0} (+{e:F0})")
        : PeakMiB.ToString("F0", CultureInfo.InvariantCulture);
}

internal sealed record ResultRow(BenchmarkCase Case, double BaselineMs, double CandidateMs, double Ratio, double MaxDifference)
{
    public MemoryFigure? BaselineMemory { get; init; }
    public MemoryFigure? CandidateMemory { get; init; }
    public MemoryFigure? MemoryBaselineMemory { get; init; }
    public double? FloorMs { get; init; }
    public double? FloorRatio { get; init; }
    public int? FloorCalls { get; init; }
    public int Reps { get; init; } = 1;
    public string? Plan { get; init; }

    /// <summary>Candidate / memory baseline, of extra memory where both were measured (CPU training), else of peaks.</summary>
    public double? MemoryRatio => MemoryBaselineMemory is { } m && CandidateMemory is { } c
        ? (m.ExtraMiB is double me && c.ExtraMiB is double ce ? ce / me : c.PeakMiB / m.PeakMiB)
        : null;

    private string MemoryKind => CandidateMemory?.ExtraMiB is not null && MemoryBaselineMemory?.ExtraMiB is not null ? "extra" : "peak";

    public bool Met => (Case.TimeTarget is not double t || Ratio <= t)
        && (Case.FloorTarget is not double f || FloorRatio is not double fr || fr <= f)
        && (Case.MemoryTarget is not double mt || MemoryRatio is not double r || r <= mt);

    private string Ms(double ms) => ms < 1 ? ms.ToString("F3", CultureInfo.InvariantCulture) : ms.ToString("F1", CultureInfo.InvariantCulture);

    public string Summary() =>
        $"{Case.Baseline} {Ms(BaselineMs)} ms, {Case.Candidate} {Ms(CandidateMs)} ms, ratio {Ratio:F3}" +
        (Case.TimeTarget is double t ? $" (target <= {t:F2})" : "") +
        (FloorRatio is double fr ? $", floor ({FloorCalls} native calls) {Ms(FloorMs!.Value)} ms, vs floor {fr:F3}" + (Case.FloorTarget is double ft ? $" (target <= {ft:F2})" : "") : "") +
        (Plan is not null ? $", plan {Plan}" : "") +
        $", max |diff| {MaxDifference:E1}" +
        (Reps > 1 ? $", {Reps} calls per timed batch" : "") +
        (CandidateMemory is { } c ? $", peak{(c.ExtraMiB is null ? "" : " (+extra)")} {BaselineMemory?.ToString() ?? "-"} / {c} MiB" : "") +
        (MemoryRatio is double r ? $", {MemoryKind} vs {Case.MemoryBaseline} ({MemoryBaselineMemory} MiB) {r:F3} (target <= {Case.MemoryTarget:F3})" : "");

    public static string Table(IEnumerable<ResultRow> rows, bool device = false)
    {
        var list = rows.ToList();
        bool floors = list.Any(r => r.FloorRatio is not null);
        bool extra = list.Any(r => r.CandidateMemory?.ExtraMiB is not null);
        string peakHeader = device ? "peak MiB above inputs (baseline / candidate)"
            : extra ? "peak MiB (+extra) (baseline / candidate)" : "peak MiB (baseline / candidate)";
        string versusHeader = list.All(r => r.Case.MemoryBaseline is null or Variant.Manual) ? "vs manual peak" : "vs memory baseline";
        var lines = new List<string>
        {
            "| case | baseline | baseline ms | candidate | candidate ms | ratio | target |" + (floors ? " floor ms | vs floor | floor target |" : "") + $" max abs diff | {peakHeader} | {versusHeader} |",
            "| --- | --- | ---: | --- | ---: | ---: | --- |" + (floors ? " ---: | ---: | --- |" : "") + " ---: | ---: | ---: |",
        };
        foreach (ResultRow r in list)
        {
            string target = r.Case.TimeTarget is double t ? $"<= {t:F2} {(r.Ratio <= t ? "met" : "MISSED")}" : "-";
            string floor = !floors ? "" : r.FloorRatio is double fr
                ? $" {r.Ms(r.FloorMs!.Value)} | {fr:F3} | {(r.Case.FloorTarget is double ft ? $"<= {ft:F2} {(fr <= ft ? "met" : "MISSED")}" : "-")} |"
                : " - | - | - |";
            string peak = r.CandidateMemory is { } c ? $"{r.BaselineMemory?.ToString() ?? "-"} / {c}" : "-";
            string manual = r.MemoryRatio is double m
                ? $"{(r.Case.MemoryBaseline == Variant.Manual ? "" : r.Case.MemoryBaseline + " ")}{r.MemoryBaselineMemory} MiB; {(r.MemoryKind == "extra" ? "extra " : "")}{m:F3} {(m <= r.Case.MemoryTarget ? "met" : "MISSED")}"
                : "-";
            lines.Add($"| {r.Case.Name} | {r.Case.Baseline} | {r.Ms(r.BaselineMs)} | {r.Case.Candidate} | {r.Ms(r.CandidateMs)} | {r.Ratio:F3} | {target} |{floor} {r.MaxDifference:E1} | {peak} | {manual} |");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
