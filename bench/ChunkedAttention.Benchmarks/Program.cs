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
// mark (VmHWM), so one case's allocations never inflate another's figure.
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
                    selected.Add(BenchmarkCase.All.FirstOrDefault(c => c.Name == name)
                        ?? throw new ArgumentException($"--case: unknown case '{name}'. Cases: {string.Join(", ", BenchmarkCase.All.Select(c => c.Name))}"));
                    break;
                default:
                    Console.Error.WriteLine("usage: ChunkedAttention.Benchmarks [--case NAME]... [--no-memory] [--markdown FILE]");
                    Console.Error.WriteLine("cases: " + string.Join(", ", BenchmarkCase.All.Select(c => c.Name)));
                    return 2;
            }
        }
        if (selected.Count == 0) selected.AddRange(BenchmarkCase.All);

        Console.WriteLine($"ChunkedAttention benchmarks on CPU: {Environment.ProcessorCount} cores, {get_num_threads()} torch threads, fp32, no grad");
        var rows = new List<ResultRow>();
        foreach (BenchmarkCase benchmark in selected)
        {
            Console.WriteLine($"- {benchmark.Name}: {benchmark.Description}");
            ResultRow row = Time(benchmark);
            if (memory)
            {
                row = row with
                {
                    BaselinePeakMiB = MeasureMemoryInChild(benchmark, benchmark.Baseline),
                    CandidatePeakMiB = MeasureMemoryInChild(benchmark, benchmark.Candidate),
                    MemoryBaselinePeakMiB = benchmark.MemoryBaseline is Variant v ? MeasureMemoryInChild(benchmark, v) : null,
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
        using var noGrad = no_grad();
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

    private static double? MeasureMemoryInChild(BenchmarkCase benchmark, Variant variant)
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
        if (child.ExitCode != 0 || !double.TryParse(output.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double mib))
        {
            Console.Error.WriteLine($"  memory measurement of {benchmark.Name}/{variant} failed: {errors.Trim()}");
            return null;
        }
        return mib;
    }

    private static int MeasureMemoryInThisProcess(string caseName, Variant variant)
    {
        BenchmarkCase benchmark = BenchmarkCase.All.Single(c => c.Name == caseName);
        using var noGrad = no_grad();
        using AttentionInputs inputs = benchmark.CreateInputs();
        using Tensor output = benchmark.Run(variant, inputs);
        Console.WriteLine(PeakResidentMiB().ToString("F0", CultureInfo.InvariantCulture));
        return 0;
    }

    /// <summary>The process's RSS high-water mark (Linux /proc; the OS keeps it, not the GC).</summary>
    private static double PeakResidentMiB()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
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

internal sealed record ResultRow(BenchmarkCase Case, double BaselineMs, double CandidateMs, double Ratio, double MaxDifference)
{
    public double? BaselinePeakMiB { get; init; }
    public double? CandidatePeakMiB { get; init; }
    public double? MemoryBaselinePeakMiB { get; init; }

    public double? MemoryRatio => MemoryBaselinePeakMiB is double m && CandidatePeakMiB is double c ? c / m : null;

    public bool Met => (Case.TimeTarget is not double t || Ratio <= t) && (Case.MemoryTarget is not double mt || MemoryRatio is not double r || r <= mt);

    public string Summary() =>
        $"{Case.Baseline} {BaselineMs:F1} ms, {Case.Candidate} {CandidateMs:F1} ms, ratio {Ratio:F3}" +
        (Case.TimeTarget is double t ? $" (target <= {t:F2})" : "") +
        $", max |diff| {MaxDifference:E1}" +
        (CandidatePeakMiB is double c ? $", peak {BaselinePeakMiB:F0} / {c:F0} MiB" : "") +
        (MemoryRatio is double r ? $", peak vs {Case.MemoryBaseline} {r:F3} (target <= {Case.MemoryTarget:F2})" : "");

    public static string Table(IEnumerable<ResultRow> rows)
    {
        var lines = new List<string>
        {
            "| case | baseline | baseline ms | candidate | candidate ms | ratio | target | max abs diff | peak MiB (baseline / candidate) | vs manual peak |",
            "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |",
        };
        foreach (ResultRow r in rows)
        {
            string target = r.Case.TimeTarget is double t ? $"<= {t:F2} {(r.Ratio <= t ? "met" : "MISSED")}" : "-";
            string peak = r.CandidatePeakMiB is double c ? $"{r.BaselinePeakMiB:F0} / {c:F0}" : "-";
            string manual = r.MemoryRatio is double m ? $"{r.MemoryBaselinePeakMiB:F0} MiB; {m:F3} {(m <= r.Case.MemoryTarget ? "met" : "MISSED")}" : "-";
            lines.Add($"| {r.Case.Name} | {r.Case.Baseline} | {r.BaselineMs:F1} | {r.Case.Candidate} | {r.CandidateMs:F1} | {r.Ratio:F3} | {target} | {r.MaxDifference:E1} | {peak} | {manual} |");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
