using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ChunkedAttention.Benchmarks;
using TorchSharp;
using static TorchSharp.torch;

// Timing: paired runs in this process (baseline and candidate alternate, order swapped every
// pair so drift hits both); the reported ratio is the median of the per-pair ratios.
// Memory: each variant runs once in a fresh child process that reports its RSS high-water
// mark (VmHWM), so one case's allocations never inflate another's figure. Training cases also report
// extra memory: the child first runs the variant on a small input (libraries, thread pools and allocator
// arenas are then in place), allocates the case's inputs and upstream gradient, resets the high-water mark
// (/proc/self/clear_refs, 5) and reads VmRSS as the baseline; extra = VmHWM after forward + backward
// minus that baseline, i.e. the memory the call itself needed on top of what existed before it.
return BenchmarkProgram.Run(args);

internal static class BenchmarkProgram
{
    public static int Run(string[] args)
    {
        if (args.Length == 3 && args[0] == "--measure-memory")
            return MeasureMemoryInThisProcess(args[1], Enum.Parse<Variant>(args[2]));

        var selected = new List<BenchmarkCase>();
        bool memory = true;
        string? markdownPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--no-memory": memory = false; break;
                case "--markdown" when i + 1 < args.Length: markdownPath = args[++i]; break;
                case "--case" when i + 1 < args.Length:
                    string name = args[++i];
                    selected.Add(BenchmarkCase.Every.FirstOrDefault(c => c.Name == name)
                        ?? throw new ArgumentException($"--case: unknown case '{name}'. Cases: {string.Join(", ", BenchmarkCase.Every.Select(c => c.Name))}"));
                    break;
                default:
                    Console.Error.WriteLine("usage: ChunkedAttention.Benchmarks [--case NAME]... [--no-memory] [--markdown FILE]");
                    Console.Error.WriteLine("cases: " + string.Join(", ", BenchmarkCase.All.Select(c => c.Name)) +
                        "; on request (--case only): " + string.Join(", ", BenchmarkCase.OnRequest.Select(c => c.Name)));
                    return 2;
            }
        }
        if (selected.Count == 0) selected.AddRange(BenchmarkCase.All);

        Console.WriteLine($"ChunkedAttention benchmarks on CPU: {Environment.ProcessorCount} cores, {get_num_threads()} torch threads, fp32, no grad (train-* cases: forward + backward)");
        var rows = new List<ResultRow>();
        foreach (BenchmarkCase benchmark in selected)
        {
            Console.WriteLine($"- {benchmark.Name}: {benchmark.Description}");
            ResultRow row = Time(benchmark);
            if (memory)
            {
                row = row with
                {
                    Baseline = MeasureMemoryInChild(benchmark, benchmark.Baseline),
                    Candidate = MeasureMemoryInChild(benchmark, benchmark.Candidate),
                    MemoryBaseline = benchmark.MemoryBaseline is Variant v ? MeasureMemoryInChild(benchmark, v) : null,
                };
            }
            rows.Add(row);
            Console.WriteLine("  " + row.Summary());
        }

        string table = ResultRow.Table(rows);
        Console.WriteLine();
        Console.WriteLine(table);
        if (markdownPath is not null) File.WriteAllText(markdownPath, table + Environment.NewLine);
        bool allMet = rows.All(r => r.Met);
        Console.WriteLine(allMet ? "All targets met." : "Some targets missed (see the table).");
        return 0;
    }

    private static ResultRow Time(BenchmarkCase benchmark)
    {
        using IDisposable? noGrad = benchmark.Training ? null : no_grad();
        using AttentionInputs inputs = benchmark.CreateInputs();
        var baseline = new List<double>();
        var candidate = new List<double>();
        var ratios = new List<double>();
        // Warm-up pair: also the accuracy check of the candidate against the baseline.
        double maxDifference;
        using (var warmUp = NewDisposeScope())
        {
            Tensor warmBaseline = benchmark.Run(benchmark.Baseline, inputs);
            Tensor warmCandidate = benchmark.Run(benchmark.Candidate, inputs);
            maxDifference = (warmCandidate - warmBaseline).abs().max().ToDouble();
        }

        // Each output is freed as soon as it is timed, as a model frees an attention result once used;
        // the order alternates so drift between the two calls of a pair hits both variants alike.
        for (int pair = 0; pair < benchmark.Runs; pair++)
        {
            bool candidateFirst = pair % 2 == 1;
            double c = candidateFirst ? Timed(benchmark, benchmark.Candidate, inputs) : 0;
            double b = Timed(benchmark, benchmark.Baseline, inputs);
            if (!candidateFirst) c = Timed(benchmark, benchmark.Candidate, inputs);
            baseline.Add(b);
            candidate.Add(c);
            ratios.Add(c / b);
        }
        return new ResultRow(benchmark, Median(baseline), Median(candidate), Median(ratios), maxDifference);
    }

    private static double Timed(BenchmarkCase benchmark, Variant variant, AttentionInputs inputs)
    {
        var clock = Stopwatch.StartNew();
        using Tensor output = benchmark.Run(variant, inputs);
        return clock.Elapsed.TotalMilliseconds;
    }

    private static MemoryFigure? MeasureMemoryInChild(BenchmarkCase benchmark, Variant variant)
    {
        string self = Environment.ProcessPath!;
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            info.ArgumentList.Add(typeof(BenchmarkProgram).Assembly.Location);
        info.ArgumentList.Add("--measure-memory");
        info.ArgumentList.Add(benchmark.Name);
        info.ArgumentList.Add(variant.ToString());
        using Process child = Process.Start(info)!;
        string output = child.StandardOutput.ReadToEnd();
        string errors = child.StandardError.ReadToEnd();
        child.WaitForExit();
        string[] figures = output.Trim().Split(' ');
        if (child.ExitCode != 0 || !double.TryParse(figures[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double mib))
        {
            Console.Error.WriteLine($"  memory measurement of {benchmark.Name}/{variant} failed: {errors.Trim()}");
            return null;
        }
        double? extra = figures.Length > 1 ? double.Parse(figures[1], CultureInfo.InvariantCulture) : null;
        return new MemoryFigure(mib, extra);
    }

    private static int MeasureMemoryInThisProcess(string caseName, Variant variant)
    {
        BenchmarkCase benchmark = BenchmarkCase.Every.Single(c => c.Name == caseName);
        if (!benchmark.Training)
        {
            using var noGrad = no_grad();
            using AttentionInputs inputs = benchmark.CreateInputs();
            using Tensor output = benchmark.Run(variant, inputs);
            Console.WriteLine(ResidentMiB("VmHWM:").ToString("F0", CultureInfo.InvariantCulture));
            return 0;
        }

        // Warm-up on a small problem: code, thread pools and allocator arenas are not the call's memory.
        BenchmarkCase small = benchmark with { QueryRows = 256, KeyRows = 256 };
        using (AttentionInputs warmInputs = small.CreateInputs())
        using (Tensor warm = small.Run(variant, warmInputs)) { }

        using AttentionInputs trainingInputs = benchmark.CreateInputs();
        File.WriteAllText("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
        double baseline = ResidentMiB("VmRSS:");
        using (Tensor gradient = benchmark.Run(variant, trainingInputs)) { }
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

    private static double Median(List<double> values)
    {
        double[] sorted = values.OrderBy(v => v).ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}

/// <summary>Peak resident memory of one variant's child process; for training cases also the extra over its inputs.</summary>
internal sealed record MemoryFigure(double PeakMiB, double? ExtraMiB)
{
    /// <summary>What memory targets compare: the extra memory where measured, else the peak.</summary>
    public double Compared => ExtraMiB ?? PeakMiB;

    public override string ToString() => ExtraMiB is double e ? $"{PeakMiB:F0} (+{e:F0})" : $"{PeakMiB:F0}";
}

internal sealed record ResultRow(BenchmarkCase Case, double BaselineMs, double CandidateMs, double Ratio, double MaxDifference)
{
    public MemoryFigure? Baseline { get; init; }
    public MemoryFigure? Candidate { get; init; }
    public MemoryFigure? MemoryBaseline { get; init; }

    public double? MemoryRatio => MemoryBaseline is { } m && Candidate is { } c ? c.Compared / m.Compared : null;

    public bool Met => (Case.TimeTarget is not double t || Ratio <= t) && (Case.MemoryTarget is not double mt || MemoryRatio is not double r || r <= mt);

    public string Summary() =>
        $"{Case.Baseline} {BaselineMs:F1} ms, {Case.Candidate} {CandidateMs:F1} ms, ratio {Ratio:F3}" +
        (Case.TimeTarget is double t ? $" (target <= {t:F2})" : "") +
        $", max |diff| {MaxDifference:E1}" +
        (Candidate is { } c ? $", peak MiB {Baseline} / {c}" : "") +
        (MemoryRatio is double r ? $", {(Case.Training ? "extra" : "peak")} vs {Case.MemoryBaseline} {r:F3} (target <= {Case.MemoryTarget:F3})" : "");

    public static string Table(IEnumerable<ResultRow> rows)
    {
        var lines = new List<string>
        {
            "| case | baseline | baseline ms | candidate | candidate ms | ratio | target | max abs diff | peak MiB (+extra), baseline / candidate | vs memory baseline |",
            "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |",
        };
        foreach (ResultRow r in rows)
        {
            string target = r.Case.TimeTarget is double t ? $"<= {t:F2} {(r.Ratio <= t ? "met" : "MISSED")}" : "-";
            string peak = r.Candidate is { } c ? $"{r.Baseline} / {c}" : "-";
            string versus = r.MemoryRatio is double m
                ? $"{r.Case.MemoryBaseline} {r.MemoryBaseline}; {m:F3} {(m <= r.Case.MemoryTarget ? "met" : "MISSED")}"
                : "-";
            lines.Add($"| {r.Case.Name} | {r.Case.Baseline} | {r.BaselineMs:F1} | {r.Case.Candidate} | {r.CandidateMs:F1} | {r.Ratio:F3} | {target} | {r.MaxDifference:E1} | {peak} | {versus} |");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
