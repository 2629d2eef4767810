using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using ChunkedAttention.AnalyzerCost;

// Cost of ChunkedAttention's analyzers and generator in a build (README.md beside this file says how and why).
//   dotnet run -c Release --project bench/AnalyzerCost [-- --files 1000 --runs 5 --report-runs 3 --work DIR]

var options = Options.Parse(args);
string root = FindRepositoryRoot();
string work = Path.GetFullPath(options.Work ?? Path.Combine(root, "artifacts", "analyzer-cost"));
var culture = CultureInfo.InvariantCulture;
string loadAtStart = LoadAverage();

Console.Error.WriteLine("Building the package's assemblies (Release)...");
string runtimeProject = Path.Combine(root, "src", "Runtime", "ChunkedAttention.Runtime.csproj");
Dotnet.Run(root, "build", runtimeProject, "-c", "Release", "-nologo", "-v:q").Require("building src/Runtime");
string runtime = Dotnet.Property(root, runtimeProject, "TargetPath", "-p:Configuration=Release", "-p:TargetFramework=net8.0");
var analyzers = new[] { "ChunkedAttention.Generator", "ChunkedAttention.CodeFixes" }
    .Select(name => Dotnet.Property(root, Path.Combine(root, "src", "Generator", name, name + ".csproj"), "TargetPath", "-p:Configuration=Release"))
    .ToArray();
string torchSharpVersion = Regex.Match(File.ReadAllText(Path.Combine(root, "Directory.Packages.props")),
    "<PackageVersion Include=\"TorchSharp\" Version=\"([^\"]+)\"").Groups[1].Value;

Console.Error.WriteLine($"Writing {options.Files} files to {work}...");
var project = new SyntheticProject(Path.Combine(work, "Synthetic"));
project.Write(options.Files, runtime, analyzers, torchSharpVersion);
Dotnet.Run(work, "restore", project.ProjectFile, "-nologo", "-v:q").Require("restoring the synthetic project");

// The generated wrappers, captured once so the build without the analyzers compiles the same program.
Console.Error.WriteLine("Capturing the generated code...");
string capture = Path.Combine(work, "Synthetic", "obj", "generated-capture");
var first = Build(withPackage: true, "-p:EmitCompilerGeneratedFiles=true", $"-p:CompilerGeneratedFilesOutputPath={capture}")
    .Require("the build with the package");
var generated = Directory.EnumerateFiles(capture, "*.cs", SearchOption.AllDirectories)
    .Where(f => f.Contains("ChunkedAttention.Generator", StringComparison.Ordinal))
    .ToArray();
foreach (string file in generated)
{
    File.Copy(file, Path.Combine(project.PregeneratedDirectory, Path.GetFileName(file)), overwrite: true);
}

// Each diagnostic once (MSBuild repeats warnings in its summary), counted per ID.
var diagnostics = Regex.Matches(first.Output, @"(?<where>\S+\(\d+,\d+\)): (warning|error) (?<id>SDPA\d{3})")
    .Select(m => (Where: m.Groups["where"].Value, Id: m.Groups["id"].Value))
    .Distinct()
    .GroupBy(d => d.Id)
    .ToDictionary(g => g.Key, g => g.Count());
Build(withPackage: false).Require("the build without the package");

Console.Error.WriteLine("Warm-up builds...");
Build(withPackage: true).Require("warm-up with");
Build(withPackage: false).Require("warm-up without");

var pairs = new List<(BuildResult With, BuildResult Without)>();
for (int run = 0; run < options.Runs; run++)
{
    // ABBA order, so a drift in machine load does not favour one variant.
    bool withFirst = run % 2 == 0;
    var a = Build(withPackage: withFirst).Require("timed build");
    var b = Build(withPackage: !withFirst).Require("timed build");
    pairs.Add(withFirst ? (a, b) : (b, a));
    Console.Error.WriteLine($"  pair {run + 1}: with {pairs[^1].With.Seconds:F2} s ({pairs[^1].With.CpuSeconds:F2} s CPU), without {pairs[^1].Without.Seconds:F2} s ({pairs[^1].Without.CpuSeconds:F2} s CPU)");
}

Console.Error.WriteLine("ReportAnalyzer builds...");
var reports = new List<(double AnalyzerTotal, double GeneratorTotal, IReadOnlyList<AnalyzerTime> Rows)>();
for (int run = 0; run < options.ReportRuns; run++)
{
    string log = Path.Combine(work, $"reportanalyzer-{run + 1}.log");
    Build(withPackage: true, "-p:ReportAnalyzer=true", $"-flp:logfile={log};verbosity=detailed").Require("ReportAnalyzer build");
    reports.Add(AnalyzerReport.Parse(File.ReadAllText(log)));
}

string loadAtEnd = LoadAverage();
double medianWith = Median(pairs.Select(p => p.With.Seconds));
double medianWithout = Median(pairs.Select(p => p.Without.Seconds));
double medianDifference = Median(pairs.Select(p => p.With.Seconds - p.Without.Seconds));
double cpuWith = Median(pairs.Select(p => p.With.CpuSeconds));
double cpuWithout = Median(pairs.Select(p => p.Without.CpuSeconds));
double cpuDifference = Median(pairs.Select(p => p.With.CpuSeconds - p.Without.CpuSeconds));
bool hasCpu = !options.SharedCompilation && !double.IsNaN(cpuWith);

var text = new StringBuilder();
text.AppendLine(culture, $"## Analyzer + generator cost: {options.Files}-file TorchSharp project (bench/AnalyzerCost)");
text.AppendLine();
text.AppendLine(culture, $"Machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET SDK {Dotnet.Run(root, "--version").Output.Trim()}; load average at start {loadAtStart}, at end {loadAtEnd}{(double.Parse(loadAtStart.Split(' ')[0], culture) > Environment.ProcessorCount ? " (busy machine: figures are noisy)" : "")}.");
text.AppendLine(culture, $"Files: {string.Join(", ", project.Kinds.Select(k => $"{k.Value} {k.Key}"))}; generated wrappers: {generated.Length}; diagnostics in the build: {(diagnostics.Count == 0 ? "none" : string.Join(", ", diagnostics.OrderBy(d => d.Key).Select(d => $"{d.Key} x{d.Value}")))}.");
text.AppendLine(culture, $"Each build: `dotnet {string.Join(' ', BuildArguments("true|false")).Replace(root + Path.DirectorySeparatorChar, string.Empty, StringComparison.Ordinal)}`; with = the package's analyzer assemblies, without = none, the generated wrappers compiled as sources (the same program). One warm-up build of each first; then pairs in ABBA order. Wall clock of the whole `dotnet build`{(hasCpu ? "; CPU = user + system time of its process tree (the compiler included)" : "")}.");
text.AppendLine();
text.AppendLine(hasCpu
    ? "| pair | with (s) | without (s) | difference (s) | with, CPU (s) | without, CPU (s) | difference, CPU (s) |"
    : "| pair | with (s) | without (s) | difference (s) |");
text.AppendLine(hasCpu ? "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |" : "| ---: | ---: | ---: | ---: |");
for (int i = 0; i < pairs.Count; i++)
{
    var (w, wo) = pairs[i];
    text.AppendLine(hasCpu
        ? string.Create(culture, $"| {i + 1} | {w.Seconds:F2} | {wo.Seconds:F2} | {w.Seconds - wo.Seconds:+0.00;-0.00} | {w.CpuSeconds:F2} | {wo.CpuSeconds:F2} | {w.CpuSeconds - wo.CpuSeconds:+0.00;-0.00} |")
        : string.Create(culture, $"| {i + 1} | {w.Seconds:F2} | {wo.Seconds:F2} | {w.Seconds - wo.Seconds:+0.00;-0.00} |"));
}

text.AppendLine(hasCpu
    ? string.Create(culture, $"| median | {medianWith:F2} | {medianWithout:F2} | {medianDifference:+0.00;-0.00} ({100 * medianDifference / medianWithout:+0.0;-0.0} %) | {cpuWith:F2} | {cpuWithout:F2} | {cpuDifference:+0.00;-0.00} ({100 * cpuDifference / cpuWithout:+0.0;-0.0} %) |")
    : string.Create(culture, $"| median | {medianWith:F2} | {medianWithout:F2} | {medianDifference:+0.00;-0.00} ({100 * medianDifference / medianWithout:+0.0;-0.0} %) |"));
text.AppendLine();

// Per analyzer and generator of this package: median over the ReportAnalyzer builds.
var ours = reports.SelectMany(r => r.Rows)
    .Where(r => r.Assembly.StartsWith("ChunkedAttention", StringComparison.Ordinal))
    .GroupBy(r => (r.Kind, r.Type))
    .Select(g => (g.Key.Kind, g.Key.Type, Seconds: Median(Enumerable.Range(0, reports.Count)
        .Select(i => reports[i].Rows.Where(r => r.Kind == g.Key.Kind && r.Type == g.Key.Type).Sum(r => r.Seconds)))))
    .OrderBy(r => r.Kind, StringComparer.Ordinal).ThenByDescending(r => r.Seconds)
    .ToList();
double oursTotal = Median(Enumerable.Range(0, reports.Count).Select(i => reports[i].Rows
    .Where(r => r.Assembly.StartsWith("ChunkedAttention", StringComparison.Ordinal)).Sum(r => r.Seconds)));
text.AppendLine(culture, $"`-p:ReportAnalyzer=true` ({reports.Count} more builds with the package, median; times add up across the compiler's threads):");
text.AppendLine();
text.AppendLine(hasCpu
    ? "| analyzer / generator | kind | seconds | % of the build's wall clock | % of the build's CPU |"
    : "| analyzer / generator | kind | seconds | % of the build's wall clock |");
text.AppendLine(hasCpu ? "| --- | --- | ---: | ---: | ---: |" : "| --- | --- | ---: | ---: |");
void Row(string name, string kind, double seconds) => text.AppendLine(hasCpu
    ? string.Create(culture, $"| {name} | {kind} | {seconds:F3} | {100 * seconds / medianWith:F2} | {100 * seconds / cpuWith:F2} |")
    : string.Create(culture, $"| {name} | {kind} | {seconds:F3} | {100 * seconds / medianWith:F2} |"));
foreach (var row in ours)
{
    Row(row.Type, row.Kind, row.Seconds);
}

Row("**ChunkedAttention, all**", "both", oursTotal);
Row("every analyzer of the build (SDK's included)", "analyzer", Median(reports.Select(r => r.AnalyzerTotal)));
Row("every generator of the build (SDK's included)", "generator", Median(reports.Select(r => r.GeneratorTotal)));
text.AppendLine();
double pairedShare = 100 * medianDifference / medianWithout;
double cpuShare = 100 * cpuDifference / cpuWithout;
double reportShare = 100 * oursTotal / (hasCpu ? cpuWith : medianWith);
string Verdict(double share) => share < 2 ? "met" : "not met";
text.AppendLine(string.Create(culture, $"Goal: under 2 % of the build. Paired wall clock: {pairedShare:+0.0;-0.0} % ({Verdict(pairedShare)})")
    + (hasCpu ? string.Create(culture, $"; paired CPU: {cpuShare:+0.0;-0.0} % ({Verdict(cpuShare)})") : string.Empty)
    + string.Create(culture, $"; ReportAnalyzer, ChunkedAttention's sum over the build's {(hasCpu ? "CPU" : "wall clock")}: {reportShare:F2} % ({Verdict(reportShare)})."));

Console.WriteLine(text.ToString());
File.WriteAllText(Path.Combine(work, "results.md"), text.ToString());
return 0;

BuildResult Build(bool withPackage, params string[] extra) =>
    Dotnet.Timed(work, BuildArguments(withPackage ? "true" : "false").Concat(extra).ToArray());

// Self-contained builds by default: the compiler runs in the build's own process tree (no compiler server
// shared with other builds on the machine, no MSBuild nodes kept alive), so its CPU time can be counted.
string[] BuildArguments(string withPackage) =>
    new[] { "build", project.ProjectFile, "--no-restore", "-c", "Release", "-t:Rebuild", $"-p:WithChunkedAttention={withPackage}", "-nologo", "-v:q" }
        .Concat(options.SharedCompilation ? Array.Empty<string>() : new[] { "-p:UseSharedCompilation=false", "-nodeReuse:false" })
        .ToArray();

static double Median(IEnumerable<double> values)
{
    var sorted = values.OrderBy(v => v).ToArray();
    if (sorted.Length == 0)
    {
        return double.NaN;
    }

    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static string FindRepositoryRoot()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "Generators.sln")))
        {
            return directory.FullName;
        }
    }

    throw new InvalidOperationException("Generators.sln not found above " + AppContext.BaseDirectory);
}

internal sealed record Options(int Files, int Runs, int ReportRuns, string? Work, bool SharedCompilation)
{
    public static Options Parse(string[] args)
    {
        var options = new Options(1000, 5, 3, null, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--files" => options with { Files = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--runs" => options with { Runs = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--report-runs" => options with { ReportRuns = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--work" => options with { Work = Value() },
                "--shared-compilation" => options with { SharedCompilation = true },
                _ => throw new ArgumentException($"Unknown argument {args[i]}; use --files N, --runs N, --report-runs N, --work DIR, --shared-compilation."),
            };
        }

        if (options.Files < 40 || options.Runs < 1 || options.ReportRuns < 1)
        {
            throw new ArgumentException("--files must be at least 40 (one of each kind), --runs and --report-runs at least 1.");
        }

        return options;
    }
}

internal sealed record BuildResult(int ExitCode, string Output, double Seconds, double CpuSeconds)
{
    public BuildResult Require(string what)
    {
        if (ExitCode == 0)
        {
            return this;
        }

        // Errors first (a build prints warnings for every SDPA call): at most 20 lines of them, else the tail.
        var lines = Output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var errors = lines.Where(l => l.Contains(": error ", StringComparison.Ordinal)).Distinct().Take(20).ToArray();
        string shown = string.Join(Environment.NewLine, errors.Length > 0 ? errors : lines.TakeLast(40));
        throw new InvalidOperationException($"{what} failed (exit code {ExitCode}):{Environment.NewLine}{shown}");
    }
}

internal static class Dotnet
{
    public static BuildResult Run(string directory, params string[] arguments) => Timed(directory, arguments);

    public static BuildResult Timed(string directory, string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        var output = new StringBuilder();
        double cpuBefore = ChildrenCpuSeconds();
        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        stopwatch.Stop();
        return new BuildResult(process.ExitCode, output.ToString(), stopwatch.Elapsed.TotalSeconds, ChildrenCpuSeconds() - cpuBefore);
    }

    // User + system time of this process's waited-for children and their waited-for descendants
    // (/proc/self/stat cutime and cstime, in clock ticks of 1/100 s on Linux); NaN elsewhere.
    private static double ChildrenCpuSeconds()
    {
        if (!File.Exists("/proc/self/stat"))
        {
            return double.NaN;
        }

        string stat = File.ReadAllText("/proc/self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)) / 100.0;
    }

    public static string Property(string directory, string project, string name, params string[] properties)
    {
        var result = Run(directory, new[] { "msbuild", project, $"-getProperty:{name}", "-nologo" }.Concat(properties).ToArray()).Require($"reading {name} of {project}");
        return result.Output.Trim();
    }
}
