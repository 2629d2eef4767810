using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using ChunkedAttention.Generator.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The driver's caches hold: edits that do not touch what the generator reads leave every tracked
/// step Cached or Unchanged and regenerate nothing; a settings change regenerates only its type.
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

    [Fact]
    public void EditToUnrelatedFileReusesEveryStep()
    {
        AssertEverythingReused(2, Unrelated.Replace("2 * x", "x + x"));
    }

    [Fact]
    public void EditToUnrelatedMemberOfTargetReusesEveryStep()
    {
        AssertEverythingReused(0, FirstAttention.Replace("public int Heads => 8;", "public int Heads => 16;\n        public int Layers() => 4;"));
    }

    [Fact]
    public void ChunkSizeChangeRegeneratesOnlyThatType()
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
    public void PipelineOutputsHoldNoCompilerObjects()
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
