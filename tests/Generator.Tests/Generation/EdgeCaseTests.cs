using System.Linq;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Declarations that stress the re-declared hierarchy and the hint names; each must generate and
/// build with no error and no warning.
/// </summary>
public sealed class EdgeCaseTests
{
    [Fact]
    public void Same_name_in_different_namespaces_nesting_and_arity_gets_distinct_files()
    {
        const string Source = """
            using ChunkedAttention;

            namespace Models { [ChunkedAttention] public partial class Attention { } }
            namespace Other { [ChunkedAttention] public partial class Attention { } }
            namespace Models { public partial class Block { [ChunkedAttention] public partial class Attention { } } }
            namespace Models { [ChunkedAttention] public partial class Attention<T> { } }
            namespace Models { [ChunkedAttention] public partial class Attention<T, U> { } }
            [ChunkedAttention] public partial class Attention { }
            """;

        GeneratorRun run = AssertBuildsClean(Source);

        Assert.Equal(
            new[]
            {
                "Attention.ChunkedAttention.g.cs",
                "Models.Attention.ChunkedAttention.g.cs",
                "Models.Attention`1.ChunkedAttention.g.cs",
                "Models.Attention`2.ChunkedAttention.g.cs",
                "Models.Block+Attention.ChunkedAttention.g.cs",
                "Other.Attention.ChunkedAttention.g.cs",
            },
            run.Result.GeneratedSources.Select(source => source.HintName).OrderBy(name => name, System.StringComparer.Ordinal));
    }

    [Fact]
    public void Keyword_names_are_escaped()
    {
        GeneratorRun run = AssertBuildsClean("""
            namespace Models.@event
            {
                public static partial class @class
                {
                    [ChunkedAttention.ChunkedAttention]
                    internal partial struct @struct<@int> where @int : struct { }
                }
            }
            """);

        Assert.Equal("Models.event.class+struct`1.ChunkedAttention.g.cs", Assert.Single(run.Result.GeneratedSources).HintName);
    }

    [Fact]
    public void Generic_interface_container_is_redeclared()
    {
        AssertBuildsClean("""
            namespace Models
            {
                public partial interface IBlock<TInput, TOutput>
                {
                    [ChunkedAttention.ChunkedAttention]
                    public partial class Attention { }
                }
            }
            """);
    }

    [Fact]
    public void Nullable_annotated_constraints_are_restated()
    {
        GeneratorRun run = AssertBuildsClean("""
            namespace Models
            {
                public partial class Outer<TOwner> where TOwner : class?, System.IEquatable<TOwner?>
                {
                    [ChunkedAttention.ChunkedAttention]
                    public partial class Attention<TKey> where TKey : System.Collections.Generic.IComparer<string?>?, new() { }
                }
            }
            """);

        string text = Assert.Single(run.Result.GeneratedSources).SourceText.ToString();
        Assert.Contains("where TOwner : class?, global::System.IEquatable<TOwner?>", text);
        Assert.Contains("where TKey : global::System.Collections.Generic.IComparer<string?>?, new()", text);
    }

    [Fact]
    public void Project_with_nullable_disabled_builds_clean()
    {
        // The generated file enables nullable for itself; the project's setting does not matter.
        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(
            new[] { "namespace Models { [ChunkedAttention.ChunkedAttention] public partial class Attention { } }" },
            nullable: Microsoft.CodeAnalysis.NullableContextOptions.Disable));

        Assert.Single(run.Result.GeneratedSources);
        var problems = GeneratorHarness.Problems(run.OutputCompilation);
        Assert.True(problems.IsEmpty, GeneratorHarness.Describe(problems));
    }

    [Fact]
    public void Names_that_shadow_the_runtime_or_TorchSharp_do_not_break_the_generated_code()
    {
        // Everything emitted is global::-qualified, so user names like these cannot capture it.
        AssertBuildsClean("""
            namespace Models.ChunkedAttention
            {
                public class TorchSharp { }
                public class System { }
                public class ChunkedSdpa { }

                [global::ChunkedAttention.ChunkedAttention]
                public partial class Attention
                {
                    private sealed class Tensor { }
                    private static int torch => 0;
                }
            }
            """);
    }

    [Fact]
    public void Ref_struct_is_extended()
    {
        AssertBuildsClean("""
            namespace Models
            {
                [ChunkedAttention.ChunkedAttention]
                public readonly ref partial struct SpanAttention { }
            }
            """);
    }

    [Fact]
    public void Derived_target_of_target_builds_without_hiding_warnings()
    {
        // The generated members are private, so the derived type's do not hide the base's.
        GeneratorRun run = AssertBuildsClean("""
            namespace Models
            {
                [ChunkedAttention.ChunkedAttention]
                public partial class BaseAttention { }

                [ChunkedAttention.ChunkedAttention(ChunkSize = 16)]
                public partial class DerivedAttention : BaseAttention { }
            }
            """);

        Assert.Equal(2, run.Result.GeneratedSources.Length);
    }

    [Fact]
    public void Accessible_base_property_of_the_same_name_is_hidden_explicitly()
    {
        GeneratorRun run = AssertBuildsClean("""
            namespace Models
            {
                public class Legacy
                {
                    protected static int ChunkedScaledDotProductAttention => 0;
                }

                [ChunkedAttention.ChunkedAttention]
                public partial class Attention : Legacy { }
            }
            """);

        string text = Assert.Single(run.Result.GeneratedSources).SourceText.ToString();
        Assert.Contains("private static new global::TorchSharp.torch.Tensor ChunkedScaledDotProductAttention(", text);
        Assert.Contains("private static readonly global::ChunkedAttention.ChunkedAttentionOptions ChunkedScaledDotProductAttentionOptions", text);
    }

    [Fact]
    public void Accessible_base_method_of_the_same_name_is_overloaded()
    {
        GeneratorRun run = AssertBuildsClean("""
            namespace Models
            {
                public class Legacy
                {
                    protected static int ChunkedScaledDotProductAttention(int rows) => rows;
                }

                [ChunkedAttention.ChunkedAttention]
                public partial class Attention : Legacy
                {
                    private int Both(TorchSharp.torch.Tensor q) => ChunkedScaledDotProductAttention(3) + (int)ChunkedScaledDotProductAttention(q, q, q).shape[0];
                }
            }
            """);

        Assert.DoesNotContain("static new ", Assert.Single(run.Result.GeneratedSources).SourceText.ToString());
    }

    [Fact]
    public void Type_split_over_files_with_attribute_on_one_part()
    {
        GeneratorRun run = AssertBuildsClean(
            "namespace Models { [ChunkedAttention.ChunkedAttention] public partial class Attention { } }",
            "namespace Models { public partial class Attention { public int Heads => 2; } }");

        Assert.Single(run.Result.GeneratedSources);
    }

    private static GeneratorRun AssertBuildsClean(params string[] sources)
    {
        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(sources));
        Assert.Null(run.Result.Exception);
        Assert.Empty(run.GeneratorDiagnostics);
        var problems = GeneratorHarness.Problems(run.OutputCompilation);
        Assert.True(problems.IsEmpty, GeneratorHarness.Describe(problems));
        Assert.NotEmpty(run.Result.GeneratedSources);
        return run;
    }
}
