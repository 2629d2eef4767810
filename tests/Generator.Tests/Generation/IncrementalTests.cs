using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using ChunkedAttention.Generator.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The driver's caches hold: edits that do not touch what the generator reads leave every tracked
/// step Cached or Unchanged and regenerate nothing; a settings change regenerates only its type.
/// <see cref="Each_step_runs_for_the_expected_reason"/> states, per edit, the run reason of every output
/// of every tracked step (the first target's first, as the files are ordered).
/// </summary>
public sealed class IncrementalTests
{
    private const string FirstAttention = """
        using ChunkedAttention;

        namespace Models
        {
            [ChunkedAttention(ChunkSize = 256)]
            public partial class FirstAttention
            {
                public int Heads => 8;
            }
        }
        """;

    private const string SecondAttention = """
        using ChunkedAttention;

        namespace Models
        {
            [ChunkedAttention(ChunkSize = 64, Devices = AttentionDevices.All)]
            public partial struct SecondAttention
            {
            }
        }
        """;

    private const string Unrelated = """
        namespace Models
        {
            public static class Helpers
            {
                public static int Twice(int x) => 2 * x;
            }
        }
        """;

    private static readonly IncrementalStepRunReason[] Reused = { IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged };

    private const IncrementalStepRunReason Cached = IncrementalStepRunReason.Cached;
    private const IncrementalStepRunReason Unchanged = IncrementalStepRunReason.Unchanged;
    private const IncrementalStepRunReason Modified = IncrementalStepRunReason.Modified;
    private const IncrementalStepRunReason New = IncrementalStepRunReason.New;
    private const IncrementalStepRunReason Removed = IncrementalStepRunReason.Removed;

    /// <summary>
    /// Each edit of the three-file project and the reason each tracked step's outputs ran for. The facts step
    /// re-reads every compilation and finds it equal (Unchanged), so the plan is Cached; Roslyn 4.8 re-runs the
    /// attribute targets' transform on every compilation change (Unchanged where the spec is equal); everything
    /// after an equal value comes from the cache.
    /// </summary>
    private static readonly Dictionary<string, (Func<CSharpCompilation, CSharpCompilation> Edit, Dictionary<string, IncrementalStepRunReason[]> Reasons)> Edits = new()
    {
        ["Unrelated file edited"] = (
            compilation => Replace(compilation, 2, Unrelated.Replace("2 * x", "x + x")),
            new()
            {
                [TrackingNames.CompilationFacts] = new[] { Unchanged },
                [TrackingNames.WrapperPlan] = new[] { Cached },
                [TrackingNames.Targets] = new[] { Unchanged, Unchanged },
                [TrackingNames.ValidTargets] = new[] { Cached, Cached },
                [TrackingNames.TargetsWithWrapperPlan] = new[] { Cached, Cached },
                [TrackingNames.GeneratedSources] = new[] { Cached, Cached },
            }),
        ["Unrelated member of a target edited"] = (
            compilation => Replace(compilation, 0, FirstAttention.Replace("public int Heads => 8;", "public int Heads => 16;")),
            new()
            {
                [TrackingNames.CompilationFacts] = new[] { Unchanged },
                [TrackingNames.WrapperPlan] = new[] { Cached },
                [TrackingNames.Targets] = new[] { Unchanged, Unchanged },
                [TrackingNames.ValidTargets] = new[] { Cached, Cached },
                [TrackingNames.TargetsWithWrapperPlan] = new[] { Cached, Cached },
                [TrackingNames.GeneratedSources] = new[] { Cached, Cached },
            }),
        ["ChunkSize of the first target changed"] = (
            compilation => Replace(compilation, 0, FirstAttention.Replace("ChunkSize = 256", "ChunkSize = 512")),
            new()
            {
                [TrackingNames.CompilationFacts] = new[] { Unchanged },
                [TrackingNames.WrapperPlan] = new[] { Cached },
                [TrackingNames.Targets] = new[] { Modified, Unchanged },
                [TrackingNames.ValidTargets] = new[] { Modified, Cached },
                [TrackingNames.TargetsWithWrapperPlan] = new[] { Modified, Cached },
                [TrackingNames.GeneratedSources] = new[] { Modified, Cached },
            }),
        ["Third target added in a new file"] = (
            compilation => compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
                "namespace Models { [ChunkedAttention.ChunkedAttention] public partial class Third { } }",
                (CSharpParseOptions)compilation.SyntaxTrees.First().Options,
                "Input3.cs")),
            new()
            {
                [TrackingNames.CompilationFacts] = new[] { Unchanged },
                [TrackingNames.WrapperPlan] = new[] { Cached },
                [TrackingNames.Targets] = new[] { Unchanged, Unchanged, New },
                [TrackingNames.ValidTargets] = new[] { Cached, Cached, New },
                [TrackingNames.TargetsWithWrapperPlan] = new[] { Cached, Cached, New },
                [TrackingNames.GeneratedSources] = new[] { Cached, Cached, New },
            }),
        ["TorchSharp reference removed"] = (
            compilation => compilation.RemoveReferences(compilation.References.Where(r => Path.GetFileName(r.Display) == "TorchSharp.dll")),
            new()
            {
                [TrackingNames.CompilationFacts] = new[] { Modified },
                [TrackingNames.WrapperPlan] = new[] { Modified },
                [TrackingNames.Targets] = new[] { Unchanged, Unchanged },
                [TrackingNames.ValidTargets] = new[] { Cached, Cached },
                [TrackingNames.TargetsWithWrapperPlan] = new[] { Modified, Modified },
                [TrackingNames.GeneratedSources] = new[] { Removed, Removed },
            }),
    };

    public static TheoryData<string> EditNames => new(Edits.Keys);

    [Theory]
    [MemberData(nameof(EditNames))]
    public void Each_step_runs_for_the_expected_reason(string edit)
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = RunOnce();
        (Func<CSharpCompilation, CSharpCompilation> apply, Dictionary<string, IncrementalStepRunReason[]> expected) = Edits[edit];

        GeneratorRunResult result = driver.RunGenerators(apply(compilation)).GetRunResult().Results.Single();

        Assert.Equal(TrackingNames.All.OrderBy(name => name), expected.Keys.OrderBy(name => name));
        foreach (string step in TrackingNames.All)
        {
            IncrementalStepRunReason[] actual = result.TrackedSteps[step].SelectMany(run => run.Outputs).Select(output => output.Reason).ToArray();
            Assert.True(expected[step].SequenceEqual(actual), $"{edit}, {step}: expected {string.Join(", ", expected[step])}, ran {string.Join(", ", actual)}");
        }
    }

    [Fact]
    public void Edit_to_unrelated_file_reuses_every_step()
    {
        AssertEverythingReused(2, Unrelated.Replace("2 * x", "x + x"));
    }

    [Fact]
    public void Edit_to_unrelated_member_of_target_reuses_every_step()
    {
        AssertEverythingReused(0, FirstAttention.Replace("public int Heads => 8;", "public int Heads => 16;\n        public int Layers() => 4;"));
    }

    [Fact]
    public void Chunk_size_change_regenerates_only_that_type()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = RunOnce();
        IReadOnlyDictionary<string, string> before = Sources(driver);

        GeneratorDriver after = driver.RunGenerators(Replace(compilation, 0, FirstAttention.Replace("ChunkSize = 256", "ChunkSize = 512")));
        GeneratorRunResult result = after.GetRunResult().Results.Single();
        IReadOnlyDictionary<string, string> sources = Sources(after);

        const string First = "Models.FirstAttention.ChunkedAttention.g.cs";
        const string Second = "Models.SecondAttention.ChunkedAttention.g.cs";
        Assert.NotEqual(before[First], sources[First]);
        Assert.Contains("ChunkSize = 512,", sources[First]);
        Assert.Equal(before[Second], sources[Second]);

        // Exactly one emitted file changed; the other came from the cache.
        var emitted = result.TrackedSteps[TrackingNames.GeneratedSources].SelectMany(step => step.Outputs).ToList();
        Assert.Single(emitted, output => output.Reason == IncrementalStepRunReason.Modified);
        Assert.Single(emitted, output => Reused.Contains(output.Reason));
    }

    [Fact]
    public void Pipeline_outputs_hold_no_compiler_objects()
    {
        (GeneratorDriver driver, _) = RunOnce();
        GeneratorRunResult result = driver.GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            Assert.True(result.TrackedSteps.ContainsKey(name), $"Step {name} was not tracked.");
            foreach (IncrementalGeneratorRunStep step in result.TrackedSteps[name])
            {
                foreach ((object value, IncrementalStepRunReason _) in step.Outputs)
                {
                    ModelInspector.AssertHoldsNoCompilerObjects(value, name);
                }
            }
        }
    }

    private static void AssertEverythingReused(int editedTree, string editedSource)
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = RunOnce();
        IReadOnlyDictionary<string, string> before = Sources(driver);

        GeneratorDriver after = driver.RunGenerators(Replace(compilation, editedTree, editedSource));
        GeneratorRunResult result = after.GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            Assert.True(result.TrackedSteps.ContainsKey(name), $"Step {name} did not run.");
            foreach (IncrementalGeneratorRunStep step in result.TrackedSteps[name])
            {
                foreach ((object _, IncrementalStepRunReason reason) in step.Outputs)
                {
                    Assert.True(Reused.Contains(reason), $"Step {name} produced a {reason} output.");
                }
            }
        }

        foreach ((string _, ImmutableArray<IncrementalGeneratorRunStep> steps) in result.TrackedOutputSteps)
        {
            Assert.All(steps.SelectMany(step => step.Outputs), output => Assert.Contains(output.Reason, Reused));
        }

        Assert.Equal(before, Sources(after));
    }

    private static (GeneratorDriver Driver, CSharpCompilation Compilation) RunOnce()
    {
        CSharpCompilation compilation = GeneratorHarness.Compile(new[] { FirstAttention, SecondAttention, Unrelated });
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        Assert.Equal(2, driver.GetRunResult().GeneratedTrees.Length);
        return (driver, compilation);
    }

    private static CSharpCompilation Replace(CSharpCompilation compilation, int index, string source)
    {
        SyntaxTree old = compilation.SyntaxTrees.ElementAt(index);
        return compilation.ReplaceSyntaxTree(old, CSharpSyntaxTree.ParseText(source, (CSharpParseOptions)old.Options, old.FilePath));
    }

    private static IReadOnlyDictionary<string, string> Sources(GeneratorDriver driver) =>
        driver.GetRunResult().Results.Single().GeneratedSources
            .ToDictionary(source => source.HintName, source => source.SourceText.ToString());
}
