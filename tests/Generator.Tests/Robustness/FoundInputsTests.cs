using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// Inputs the mutation property found to break something, reduced by hand to their essence and
/// pinned here so each stays fixed, whatever the random search happens to draw next time.
/// Each runs through the whole pipeline (generator, analyzers, fixes) and must come out clean.
/// </summary>
public sealed class FoundInputsTests
{
    [Theory]
    // Two declarations of one type in one file, the attribute bound on one and written (unbound) on
    // the other: ForAttributeWithMetadataName matches attributes by syntax tree, not by declaration,
    // so both declarations arrive as targets with the same attribute. One type must give one file
    // (else AddSource throws on the duplicate hint name: CS8785, the generator's whole output lost).
    [InlineData("using ChunkedAttention;\n[ChunkedAttention] partial class Mixer { }\n[Mixer.ChunkedAttention] partial class Mixer { }")]
    [InlineData("[ChunkedAttention.ChunkedAttention] public partial class A { }\n[ChunkedAttention] public partial class A { }")]
    [InlineData("using ChunkedAttention;\n[ChunkedAttention(ChunkSize = 64)] partial struct S { }\n[Unknown.ChunkedAttention(ChunkSize = 3)] partial struct S { }")]
    // Names missing while being typed: the generated file must still parse (or not be generated).
    [InlineData("using ChunkedAttention;\n[ChunkedAttention] public partial class { }")]
    [InlineData("using ChunkedAttention;\n[ChunkedAttention] public partial class class A { }")]
    [InlineData("using ChunkedAttention;\n[ChunkedAttention] public partial class A<T, > { }")]
    [InlineData("using ChunkedAttention;\nnamespace N. { [ChunkedAttention] public partial class A { } }")]
    [InlineData("using ChunkedAttention;\npublic partial class Outer { [ChunkedAttention] public partial struct { } }")]
    public async Task Input_runs_clean(string source)
    {
        var stats = new PipelineStats();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var failures = await RoslynPipeline.RunAsync(
            new[] { new SourceFile("/0/Input.cs", source) }, ReferenceSet.Full, LanguageVersion.CSharp12, stats, maxFixesPerCase: 4, timeout.Token);

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }
}
