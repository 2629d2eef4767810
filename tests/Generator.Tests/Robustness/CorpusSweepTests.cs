using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Xunit.Abstractions;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// Real code, untouched: every C# file of this repository (by project), the hand-written corpus of
/// TorchSharp attention code, and the C# templates of the installed SDK, all compiled with
/// TorchSharp and the runtime referenced, through the generator, both analyzers and the fixes.
/// Zero exceptions; the figures show how much code that was.
/// </summary>
public sealed class CorpusSweepTests
{
    private const int MaxFixesPerCase = 6;

    private readonly ITestOutputHelper _output;

    public CorpusSweepTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Repository_sources_run_without_exceptions()
    {
        var cases = SeedSources.Repository();
        Assert.Contains(cases, c => c.Name == "repo/src/Runtime");
        Assert.Contains(cases, c => c.Name.StartsWith("repo/samples/", StringComparison.Ordinal));
        await SweepAsync("repository", cases);
    }

    [Fact]
    public async Task Corpus_runs_without_exceptions_and_finds_what_it_was_written_for()
    {
        var cases = SeedSources.Corpus();
        Assert.True(cases.Count >= 10, $"only {cases.Count} corpus files");
        var stats = await SweepAsync("corpus", cases);

        // The corpus exists to exercise every diagnostic and both fixes; if it stops doing so, the sweep proves less.
        var summary = stats.Describe();
        foreach (var id in new[] { "SDPA001", "SDPA002", "SDPA003", "SDPA004", "SDPA005", "SDPA006", "SDPA007", "SDPA008" })
        {
            Assert.Contains(id, summary, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("code fixes offered: 0,", summary, StringComparison.Ordinal);
        Assert.DoesNotContain("generated files: 0\n", summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sdk_templates_run_without_exceptions()
    {
        var cases = SeedSources.SdkTemplates();
        Assert.True(cases.Count > 0, "no C# templates found in the installed SDK");
        await SweepAsync("SDK templates", cases);
    }

    private async Task<PipelineStats> SweepAsync(string name, IReadOnlyList<SeedCase> cases)
    {
        var stats = new PipelineStats();
        var failures = new List<string>();
        var stopwatch = Stopwatch.StartNew();
        foreach (var seed in cases)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            var found = await RoslynPipeline.RunAsync(seed.Files, ReferenceSet.Full, LanguageVersion.CSharp12, stats, MaxFixesPerCase, timeout.Token);
            failures.AddRange(found.Select(f => $"{seed.Name}: {f}"));
        }

        _output.WriteLine($"{name}: {stopwatch.Elapsed.TotalSeconds:F1} s");
        _output.WriteLine(stats.Describe());
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine + Environment.NewLine, failures));
        return stats;
    }
}
