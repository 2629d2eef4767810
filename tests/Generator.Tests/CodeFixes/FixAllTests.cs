using System.Threading.Tasks;
using ChunkedAttention.Generator.Tests.Analysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Test = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.UseChunkedAttentionCodeFixProvider>;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// Fix All with many diagnostics per type, several types per file, several files and projects.
/// Each test runs the framework's one-by-one fixing and Fix All in document, project and solution,
/// and all of them must reach the same sources.
/// </summary>
public class FixAllTests
{
    internal const string FileA = """
        using static TorchSharp.torch;

        namespace Models;

        class SelfAttention
        {
            Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            Tensor B(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
            Tensor C(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q), q, q);
        }

        class UNet
        {
            class CrossAttention
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }

            struct AttnBlock
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
        }

        partial class SplitAttention
        {
            Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
        }
        """;

    internal const string FileB = """
        using static TorchSharp.torch;

        namespace Models;

        partial class SplitAttention
        {
            Tensor B(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
        }

        static class AttentionOps
        {
            public static Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
        }
        """;

    internal const string FixedA = """
        using ChunkedAttention;
        using static TorchSharp.torch;

        namespace Models;

        [ChunkedAttention]
        partial class SelfAttention
        {
            Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            Tensor B(Tensor q, Tensor m) => ChunkedScaledDotProductAttention(q, q, q, m, is_casual: true);
            Tensor C(Tensor q) => ChunkedScaledDotProductAttention(ChunkedScaledDotProductAttention(q, q, q), q, q);
        }

        partial class UNet
        {
            [ChunkedAttention]
            partial class CrossAttention
            {
                Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }

            [ChunkedAttention]
            partial struct AttnBlock
            {
                Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
        }

        [ChunkedAttention]
        partial class SplitAttention
        {
            Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
        }
        """;

    internal const string FixedB = """
        using ChunkedAttention;
        using static TorchSharp.torch;

        namespace Models;

        partial class SplitAttention
        {
            Tensor B(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
        }

        [ChunkedAttention]
        static partial class AttentionOps
        {
            public static Tensor Apply(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
        }
        """;

    [Fact]
    public async Task Several_types_and_files_in_one_project()
    {
        await new Test()
            .WithFile("/0/A.cs", FileA, FixedA)
            .WithFile("/0/B.cs", FileB, FixedB)
            .RunAsync();
    }

    [Fact]
    public async Task Two_projects_in_one_solution()
    {
        var test = new Test().WithFile("/0/A.cs", FileA, FixedA);

        var second = test.TestState.AdditionalProjects["Second"];
        second.Sources.Add(("/1/B.cs", FileB.Replace("partial class SplitAttention", "partial class SplitAttention2")));
        second.AdditionalReferences.AddRange(RoslynTestSetup.ProductReferences);
        var secondFixed = test.FixedState.AdditionalProjects["Second"];
        secondFixed.Sources.Add(("/1/B.cs", FixedB.Replace("partial class SplitAttention", "[ChunkedAttention]\npartial class SplitAttention2")));
        secondFixed.AdditionalReferences.AddRange(RoslynTestSetup.ProductReferences);

        await test.RunAsync();
    }
}
