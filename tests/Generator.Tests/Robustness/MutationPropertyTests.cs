using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Xunit.Abstractions;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// Property: whatever state a user's code is in while being typed, the analyzers, the code fixes
/// and the generator never throw. Thousands of sources derived from the corpus, the samples and
/// the other tests' inputs (cut, tokens dropped or doubled, attributes with wrong arguments,
/// duplicated attributes, partial types split oddly, references missing) go through the whole
/// pipeline a host runs (<see cref="RoslynPipeline"/>).
/// </summary>
public sealed class MutationPropertyTests
{
    /// <summary>Raise for a longer local run: CHUNKED_ATTENTION_ROBUSTNESS_ITERATIONS=20000.</summary>
    private const string IterationsVariable = "CHUNKED_ATTENTION_ROBUSTNESS_ITERATIONS";

    private const int DefaultIterations = 3000;

    // A case taking this long is a hang, and is reported as a failure rather than stalling the run.
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);

    private static readonly LanguageVersion[] Versions =
    {
        LanguageVersion.CSharp7_3, LanguageVersion.CSharp8, LanguageVersion.CSharp9, LanguageVersion.CSharp10,
        LanguageVersion.CSharp11, LanguageVersion.CSharp12,
    };

    private static readonly Lazy<IReadOnlyList<SeedCase>> Seeds = new(() =>
        SeedSources.Corpus().Concat(SeedSources.Samples()).Concat(SeedSources.TestInputs()).ToList());

    private readonly ITestOutputHelper _output;

    public MutationPropertyTests(ITestOutputHelper output) => _output = output;

    /// <summary>A seed, the mutations applied to it in order, and the project it is compiled in.</summary>
    internal sealed record MutationCase(int Seed, Mutation[] Mutations, ReferenceSet References, LanguageVersion Version)
    {
        public SeedCase SeedCase => Seeds.Value[Seed % Seeds.Value.Count];

        public IReadOnlyList<SourceFile> Sources() => SourceMutator.Apply(SeedCase.Files, Mutations);

        public override string ToString() =>
            $"{SeedCase.Name}, {References}, {Version}, mutations: [{string.Join(", ", Mutations)}]";
    }

    private static readonly Gen<Mutation> MutationGen =
        Gen.Select(
            Gen.Enum<MutationKind>(),
            Gen.Int[0, 1 << 20],
            Gen.Int[0, 1 << 20],
            Gen.Int[0, 1 << 20],
            (kind, file, where, what) => new Mutation(kind, file, where, what));

    private static readonly Gen<ReferenceSet> ReferenceGen = Gen.Frequency(
        (7, ReferenceSet.Full),
        (1, ReferenceSet.TorchSharpOnly),
        (1, ReferenceSet.RuntimeOnly),
        (1, ReferenceSet.FrameworkOnly));

    // Zero to four mutations (none: the seed as it is, which must pass too).
    private static readonly Gen<Mutation[]> MutationsGen =
        Gen.Select(
            Gen.Int[0, 4],
            MutationGen,
            MutationGen,
            MutationGen,
            MutationGen,
            (count, a, b, c, d) => new[] { a, b, c, d }.Take(count).ToArray());

    private static readonly Gen<MutationCase> CaseGen =
        Gen.Select(
            Gen.Int[0, 1 << 20],
            MutationsGen,
            ReferenceGen,
            Gen.Int[0, Versions.Length - 1],
            (seed, mutations, references, version) => new MutationCase(seed, mutations, references, Versions[version]));

    [Fact]
    public async Task Mutated_sources_never_crash_the_analyzers_fixes_or_generator()
    {
        Assert.True(Seeds.Value.Count > 50, $"only {Seeds.Value.Count} seed cases found");
        var iterations = Iterations();
        var stats = new PipelineStats();
        var stopwatch = Stopwatch.StartNew();

        try
        {
            await CaseGen.SampleAsync(
                async @case =>
                {
                    using var timeout = new CancellationTokenSource(CaseTimeout);
                    IReadOnlyList<string> failures;
                    try
                    {
                        failures = await RoslynPipeline.RunAsync(@case.Sources(), @case.References, @case.Version, stats, maxFixesPerCase: 2, timeout.Token);
                    }
                    catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                    {
                        failures = new[] { $"did not finish within {CaseTimeout.TotalSeconds} s" };
                    }

                    if (failures.Count > 0)
                    {
                        throw new InvalidOperationException(
                            $"{@case}{Environment.NewLine}{string.Join(Environment.NewLine, failures)}{Environment.NewLine}"
                            + $"sources:{Environment.NewLine}{Show(@case.Sources())}");
                    }
                },
                iter: iterations,
                threads: Environment.ProcessorCount,
                print: c => c.ToString());
        }
        finally
        {
            // The figures, also when a case failed (then they show how far the run got).
            _output.WriteLine($"seed cases: {Seeds.Value.Count}; mutated cases run: {stats.Cases} in {stopwatch.Elapsed.TotalSeconds:F1} s");
            _output.WriteLine(stats.Describe());
        }

        Assert.True(stats.Cases >= iterations, $"ran {stats.Cases} cases, expected {iterations}");
        Assert.Equal(0, stats.Failures);
    }

    [Fact]
    public void Every_mutation_kind_changes_some_seed()
    {
        // A mutation that never applies would silently shrink what the property covers.
        var seeds = Seeds.Value;
        foreach (var kind in Enum.GetValues<MutationKind>())
        {
            var changed = Enumerable.Range(0, 40).Count(i =>
            {
                var seed = seeds[(i * 7919) % seeds.Count];
                var mutated = SourceMutator.Apply(seed.Files, new[] { new Mutation(kind, i, i * 31, i * 17) });
                return mutated.Count != seed.Files.Count || mutated.Zip(seed.Files).Any(p => p.First.Text != p.Second.Text);
            });
            Assert.True(changed >= 20, $"{kind} changed only {changed} of 40 seeds");
        }
    }

    private static long Iterations() =>
        long.TryParse(Environment.GetEnvironmentVariable(IterationsVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : DefaultIterations;

    private static string Show(IReadOnlyList<SourceFile> files) =>
        string.Join(Environment.NewLine, files.Select(f => $"---- {f.Path}{Environment.NewLine}{f.Text}"));
}
