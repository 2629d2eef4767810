using System.Threading.Tasks;
using ChunkedAttention.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Test = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.UseChunkedAttentionCodeFixProvider>;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

public class UseChunkedAttentionCodeFixTests
{
    [Theory]
    [InlineData("using TorchSharp;", "TorchSharp.torch.nn.functional.")]
    [InlineData("using TorchSharp;", "global::TorchSharp.torch.nn.functional.")]
    [InlineData("using TorchSharp;", "torch.nn.functional.")]
    [InlineData("using static TorchSharp.torch;", "nn.functional.")]
    [InlineData("using F = TorchSharp.torch.nn.functional;", "F.")]
    [InlineData("using static TorchSharp.torch.nn.functional;", "")]
    public async Task Each_call_form_becomes_the_wrapper(string usingDirective, string qualifier)
    {
        var source = $$"""
            {{usingDirective}}
            using Tensor = TorchSharp.torch.Tensor;

            namespace Models;

            public class SelfAttention
            {
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => {{qualifier}}{|SDPA001:scaled_dot_product_attention|}(q, k, v);
            }
            """;
        var fixedSource = $$"""
            using ChunkedAttention;
            {{usingDirective}}
            using Tensor = TorchSharp.torch.Tensor;

            namespace Models;

            [ChunkedAttention]
            public partial class SelfAttention
            {
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v);
            }
            """;
        await Test.VerifyAsync(source, fixedSource);
    }

    [Fact]
    public async Task Arguments_names_and_trivia_are_kept()
    {
        await Test.VerifyAsync("""
            using ChunkedAttention;
            using static TorchSharp.torch;

            /// <summary>Docs stay above the attribute.</summary>
            class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                {
                    // leading comment
                    return /* before */ nn.functional.{|SDPA001:scaled_dot_product_attention|}( // query next
                        q,
                        /* keys */ k,
                        value: v,
                        attn_mask: mask,
                        p: 0.0); // trailing
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            /// <summary>Docs stay above the attribute.</summary>
            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                {
                    // leading comment
                    return /* before */ ChunkedScaledDotProductAttention( // query next
                        q,
                        /* keys */ k,
                        value: v,
                        attn_mask: mask,
                        p: 0.0); // trailing
                }
            }
            """);
    }

    [Fact]
    public async Task Nested_types_make_every_container_partial_and_mark_only_the_innermost()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            namespace Models
            {
                public class Outer
                {
                    internal struct Middle
                    {
                        private sealed class SelfAttention
                        {
                            Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                        }
                    }
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            namespace Models
            {
                public partial class Outer
                {
                    internal partial struct Middle
                    {
                        [ChunkedAttention]
                        private sealed partial class SelfAttention
                        {
                            Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                        }
                    }
                }
            }
            """);
    }

    [Fact]
    public async Task Generic_type_with_constraints()
    {
        await Test.VerifyAsync("""
            using System;
            using static TorchSharp.torch;

            public class SelfAttention<TConfig> where TConfig : class, new()
            {
                public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using System;
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            public partial class SelfAttention<TConfig> where TConfig : class, new()
            {
                public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Static_class()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            internal static class AttentionOps
            {
                public static Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            internal static partial class AttentionOps
            {
                public static Tensor Apply(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Struct_and_record_struct()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            readonly struct AttentionState
            {
                public Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }

            record struct AttnStep(int Heads)
            {
                public Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            readonly partial struct AttentionState
            {
                public Tensor Apply(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }

            [ChunkedAttention]
            partial record struct AttnStep(int Heads)
            {
                public Tensor Apply(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Record_class_with_base_list_and_existing_attribute()
    {
        await Test.VerifyAsync("""
            using System;
            using static TorchSharp.torch;

            public abstract record ProcessorBase;

            [Serializable]
            public sealed record AttnRecord(int Heads) : ProcessorBase
            {
                public Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using System;
            using ChunkedAttention;
            using static TorchSharp.torch;

            public abstract record ProcessorBase;

            [ChunkedAttention]
            [Serializable]
            public sealed partial record AttnRecord(int Heads) : ProcessorBase
            {
                public Tensor Apply(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Two_calls_in_one_type_add_the_attribute_once()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);

                Tensor B(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);

                Tensor B(Tensor q, Tensor m) => ChunkedScaledDotProductAttention(q, q, q, m, is_casual: true);
            }
            """);
    }

    [Fact]
    public async Task Type_already_marked_and_partial_only_gets_the_call_renamed()
    {
        await Test.VerifyAsync("""
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention(ChunkSize = 128, Devices = AttentionDevices.All)]
            partial class Mixer
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention(ChunkSize = 128, Devices = AttentionDevices.All)]
            partial class Mixer
            {
                Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Partial_type_split_across_two_files_gets_one_attribute()
    {
        await new Test()
            .WithFile("/0/A.cs", """
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """)
            .WithFile("/0/B.cs", """
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor B(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor B(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """)
            .RunAsync();
    }

    [Fact]
    public async Task Container_declared_in_another_file_is_made_partial_there()
    {
        await new Test()
            .WithFile("/0/A.cs", """
            using static TorchSharp.torch;

            partial class Outer
            {
                class SelfAttention
                {
                    Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            partial class Outer
            {
                [ChunkedAttention]
                partial class SelfAttention
                {
                    Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """)
            .WithFile("/0/B.cs", """
            partial class Outer
            {
                int _other;
            }
            """, """
            partial class Outer
            {
                int _other;
            }
            """)
            .RunAsync();
    }

    [Fact]
    public async Task Calls_in_lambdas_local_functions_ctors_and_accessors_are_fixed()
    {
        await Test.VerifyAsync("""
            using System;
            using static TorchSharp.torch;

            class SelfAttention
            {
                private readonly Func<Tensor, Tensor> _field = x => nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x);
                private readonly Tensor _t;

                SelfAttention(Tensor x) { _t = nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x); }

                Tensor Property => nn.functional.{|SDPA001:scaled_dot_product_attention|}(_t, _t, _t);

                Tensor Local(Tensor x)
                {
                    return Inner(x);
                    static Tensor Inner(Tensor y) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(y, y, y);
                }
            }
            """, """
            using System;
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                private readonly Func<Tensor, Tensor> _field = x => ChunkedScaledDotProductAttention(x, x, x);
                private readonly Tensor _t;

                SelfAttention(Tensor x) { _t = ChunkedScaledDotProductAttention(x, x, x); }

                Tensor Property => ChunkedScaledDotProductAttention(_t, _t, _t);

                Tensor Local(Tensor x)
                {
                    return Inner(x);
                    static Tensor Inner(Tensor y) => ChunkedScaledDotProductAttention(y, y, y);
                }
            }
            """);
    }

    [Fact]
    public async Task SDPA004_fix_keeps_the_mask_and_the_causal_flag()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            class Helper
            {
                Tensor A(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, 0.0, true);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class Helper
            {
                Tensor A(Tensor q, Tensor m) => ChunkedScaledDotProductAttention(q, q, q, m, 0.0, true);
            }
            """);
    }

    [Fact]
    public async Task SDPA005_fix_when_enabled()
    {
        var test = new Test
        {
            TestCode = """
                using static TorchSharp.torch;

                class Helper
                {
                    Tensor A(Tensor q) => nn.functional.{|SDPA005:scaled_dot_product_attention|}(q, q, q);
                }
                """,
            FixedCode = """
                using ChunkedAttention;
                using static TorchSharp.torch;

                [ChunkedAttention]
                partial class Helper
                {
                    Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
                """,
        }.WithEditorConfig("dotnet_diagnostic.SDPA005.severity = suggestion");
        await test.RunAsync();
    }

    [Fact]
    public async Task Block_namespace_with_usings_inside_keeps_them_inside()
    {
        await Test.VerifyAsync("""
            namespace Models
            {
                using static TorchSharp.torch;

                class SelfAttention
                {
                    Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            namespace Models
            {
                using ChunkedAttention;
                using static TorchSharp.torch;

                [ChunkedAttention]
                partial class SelfAttention
                {
                    Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Fact]
    public async Task Not_offered_in_top_level_statements()
    {
        var source = """
            using static TorchSharp.torch;

            var x = ones(1, 1, 2, 4);
            var y = nn.functional.{|SDPA004:scaled_dot_product_attention|}(x, x, x, ones(2, 2), is_casual: true);
            """;
        var test = new Test { TestCode = source, FixedCode = source };
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        await test.RunAsync();
    }

    [Fact]
    public async Task Not_offered_in_an_interface_default_method()
    {
        var source = """
            using static TorchSharp.torch;

            interface IAttentionProcessor
            {
                Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """;
        await Test.VerifyAsync(source, source);
    }

    [Fact]
    public async Task Not_offered_in_a_file_local_type()
    {
        var source = """
            using static TorchSharp.torch;

            file class SelfAttention
            {
                Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """;
        await Test.VerifyAsync(source, source);
    }

    [Fact]
    public async Task Not_offered_where_the_type_declares_a_member_named_like_the_wrapper()
    {
        var source = """
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Apply(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);

                Tensor ChunkedScaledDotProductAttention(Tensor q) => q;
            }
            """;
        await Test.VerifyAsync(source, source);
    }

    [Fact]
    public async Task File_without_usings_gets_one()
    {
        await Test.VerifyAsync("""
            namespace Models
            {
                class SelfAttention
                {
                    TorchSharp.torch.Tensor A(TorchSharp.torch.Tensor q) => TorchSharp.torch.nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention]
                partial class SelfAttention
                {
                    TorchSharp.torch.Tensor A(TorchSharp.torch.Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Fact]
    public async Task Not_offered_without_the_ChunkedAttention_runtime()
    {
        var source = """
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """;
        var test = new Test { TestCode = source, FixedCode = source };
        test.TestState.AdditionalReferences.Clear();
        test.TestState.AdditionalReferences.Add(Analysis.RoslynTestSetup.ProductReferences[0]);
        await test.RunAsync();
    }
}
