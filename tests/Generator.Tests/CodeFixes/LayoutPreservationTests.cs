using System;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Xunit;
using HandWritten = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.HandWrittenAttention.HandWrittenAttentionCodeFixProvider>;
using MakePartial = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.MakePartialCodeFixProvider>;
using Test = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.UseChunkedAttentionCodeFixProvider>;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// The fixes change only what they must and keep the file's layout: each test writes the source and the
/// expected result once (4-space indentation, LF) and runs them in the layouts real repositories use —
/// tabs with CRLF and 2 spaces with LF — comparing the whole fixed text. Any line the
/// fix re-indented or ended differently from the rest of the file fails the comparison.
/// </summary>
public class LayoutPreservationTests
{
    public static TheoryData<string, string> Layouts() => new()
    {
        { "\t", "\r\n" },
        { "  ", "\n" },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Block_namespace_doc_comment_and_unsorted_usings(string indent, string eol)
    {
        // Roslyn's import service sorts the new directive in only when the existing ones are sorted;
        // in an unsorted list it goes after the last one, as Visual Studio's own "add using" does.
        await VerifyAsync(indent, eol, """
            using TorchSharp;
            using static TorchSharp.torch;
            using System;

            namespace Models
            {
                /// <summary>
                /// Self-attention.
                /// </summary>
                public class SelfAttention
                {
                    // A comment the fix must not move.
                    public Tensor Forward(Tensor q, Tensor k, Tensor v)
                    {
                        return nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, k, v);
                    }
                }
            }
            """, """
            using TorchSharp;
            using static TorchSharp.torch;
            using System;
            using ChunkedAttention;

            namespace Models
            {
                /// <summary>
                /// Self-attention.
                /// </summary>
                [ChunkedAttention]
                public partial class SelfAttention
                {
                    // A comment the fix must not move.
                    public Tensor Forward(Tensor q, Tensor k, Tensor v)
                    {
                        return ChunkedScaledDotProductAttention(q, k, v);
                    }
                }
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task File_scoped_namespace_and_sorted_usings_sort_it_in_after_System(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            using System;
            using System.Linq;
            using TorchSharp;
            using static TorchSharp.torch;
            using F = TorchSharp.torch.nn.functional;

            namespace Models;

            /// <summary>Cross-attention.</summary>
            internal sealed class CrossAttention : nn.Module
            {
                public CrossAttention() : base(nameof(CrossAttention)) { }

                public Tensor Forward(Tensor q, Tensor k, Tensor v) => F.{|SDPA001:scaled_dot_product_attention|}(q, k, v);
            }
            """, """
            using System;
            using System.Linq;
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;
            using F = TorchSharp.torch.nn.functional;

            namespace Models;

            /// <summary>Cross-attention.</summary>
            [ChunkedAttention]
            internal sealed partial class CrossAttention : nn.Module
            {
                public CrossAttention() : base(nameof(CrossAttention)) { }

                public Tensor Forward(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v);
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Usings_inside_a_block_namespace_get_the_new_one_indented_like_them(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            namespace Models
            {
                using System;
                using TorchSharp;
                using static TorchSharp.torch;

                public class SelfAttention
                {
                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            namespace Models
            {
                using System;
                using ChunkedAttention;
                using TorchSharp;
                using static TorchSharp.torch;

                [ChunkedAttention]
                public partial class SelfAttention
                {
                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task New_first_using_inside_a_namespace_keeps_the_others_and_their_comment_in_place(string indent, string eol)
    {
        // Roslyn's import service leaves a comment on the directive it is written above (only a file
        // banner at the top of a compilation unit moves up to stay first).
        await VerifyAsync(indent, eol, """
            namespace Models
            {
                // Imports.
                using TorchSharp;
                using static TorchSharp.torch;

                public class SelfAttention
                {
                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            namespace Models
            {
                using ChunkedAttention;
                // Imports.
                using TorchSharp;
                using static TorchSharp.torch;

                [ChunkedAttention]
                public partial class SelfAttention
                {
                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Existing_attributes_and_doc_comment_stay_and_the_new_line_goes_first(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            using System;
            using System.Diagnostics;
            using static TorchSharp.torch;

            namespace Models
            {
                /// <summary>Attention with two attributes.</summary>
                /// <remarks>Multi-line docs.</remarks>
                [Serializable]
                [DebuggerDisplay("{Name}")]
                public sealed class AttnProcessor
                {
                    public string Name => "attn";

                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            using System;
            using System.Diagnostics;
            using ChunkedAttention;
            using static TorchSharp.torch;

            namespace Models
            {
                /// <summary>Attention with two attributes.</summary>
                /// <remarks>Multi-line docs.</remarks>
                [ChunkedAttention]
                [Serializable]
                [DebuggerDisplay("{Name}")]
                public sealed partial class AttnProcessor
                {
                    public string Name => "attn";

                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Region_and_if_around_the_type_stay_around_it(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            using static TorchSharp.torch;

            namespace Models
            {
                #region Attention
                public class SelfAttention
                {
                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
                #endregion

            #if !LEGACY
                /// <summary>Only in new builds.</summary>
                internal class CrossAttention
                {
                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            #endif
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            namespace Models
            {
                #region Attention
                [ChunkedAttention]
                public partial class SelfAttention
                {
                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
                #endregion

            #if !LEGACY
                /// <summary>Only in new builds.</summary>
                [ChunkedAttention]
                internal partial class CrossAttention
                {
                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            #endif
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Nested_types_make_each_container_partial_in_place(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            using static TorchSharp.torch;

            namespace Models
            {
                /// <summary>Outer.</summary>
                public static class UNet
                {
                    /// <summary>Middle.</summary>
                    internal readonly struct Block
                    {
                        /// <summary>Inner.</summary>
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
                /// <summary>Outer.</summary>
                public static partial class UNet
                {
                    /// <summary>Middle.</summary>
                    internal readonly partial struct Block
                    {
                        /// <summary>Inner.</summary>
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

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task File_with_a_header_and_no_usings_gets_one_below_the_header(string indent, string eol)
    {
        await VerifyAsync(indent, eol, """
            // Copyright (c) Example.
            // Licensed under the MIT license.

            namespace Models
            {
                public class SelfAttention
                {
                    TorchSharp.torch.Tensor Forward(TorchSharp.torch.Tensor q) => TorchSharp.torch.nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
            }
            """, """
            // Copyright (c) Example.
            // Licensed under the MIT license.

            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention]
                public partial class SelfAttention
                {
                    TorchSharp.torch.Tensor Forward(TorchSharp.torch.Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
            }
            """);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Global_using_of_ChunkedAttention_means_no_using_is_added(string indent, string eol)
    {
        var test = new Test()
            .WithFile("/0/GlobalUsings.cs", Layout("global using ChunkedAttention;\n", indent, eol), Layout("global using ChunkedAttention;\n", indent, eol))
            .WithFile("/0/Attention.cs", Layout("""
                using static TorchSharp.torch;

                namespace Models;

                public class SelfAttention
                {
                    public Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
                """, indent, eol), Layout("""
                using static TorchSharp.torch;

                namespace Models;

                [ChunkedAttention]
                public partial class SelfAttention
                {
                    public Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
                """, indent, eol));
        await test.RunAsync();
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Type_split_over_two_files_gets_one_attribute_and_both_calls_renamed(string indent, string eol)
    {
        var test = new Test()
            .WithFile("/0/SelfAttention.Core.cs", Layout("""
                using System;
                using static TorchSharp.torch;

                namespace Models
                {
                    public partial class SelfAttention
                    {
                        public Tensor A(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                    }
                }
                """, indent, eol), Layout("""
                using System;
                using ChunkedAttention;
                using static TorchSharp.torch;

                namespace Models
                {
                    [ChunkedAttention]
                    public partial class SelfAttention
                    {
                        public Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                    }
                }
                """, indent, eol))
            .WithFile("/0/SelfAttention.Heads.cs", Layout("""
                using static TorchSharp.torch;

                namespace Models
                {
                    /// <summary>The other half.</summary>
                    public partial class SelfAttention
                    {
                        public Tensor B(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                    }
                }
                """, indent, eol), Layout("""
                using static TorchSharp.torch;

                namespace Models
                {
                    /// <summary>The other half.</summary>
                    public partial class SelfAttention
                    {
                        public Tensor B(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                    }
                }
                """, indent, eol));
        await test.RunAsync();
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Make_partial_touches_only_the_modifiers(string indent, string eol)
    {
        await MakePartial.VerifyAsync(Layout("""
            using ChunkedAttention;

            namespace Models
            {
                /// <summary>Outer.</summary>
                public class {|SDPA002:Outer|}
                {
                    /// <summary>Marked.</summary>
                    [ChunkedAttention(ChunkSize = 256)]
                    internal sealed class {|SDPA002:SelfAttention|}
                    {
                    }
                }
            }
            """, indent, eol), Layout("""
            using ChunkedAttention;

            namespace Models
            {
                /// <summary>Outer.</summary>
                public partial class Outer
                {
                    /// <summary>Marked.</summary>
                    [ChunkedAttention(ChunkSize = 256)]
                    internal sealed partial class SelfAttention
                    {
                    }
                }
            }
            """, indent, eol));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Hand_written_chain_over_statements_changes_only_the_chain_attribute_partial_and_using(string indent, string eol)
    {
        // SDPA007: the removed statements take their own lines with them (a comment on a removed line
        // goes too); the header comment and blank line above the chain, the comment after the final
        // product, and every other line stay byte for byte.
        await HandWritten.VerifyAsync(Layout("""
            #nullable enable
            using TorchSharp.Modules;
            using static TorchSharp.torch;
            using System;

            namespace Models
            {
                /// <summary>
                /// Causal self-attention.
                /// </summary>
                public class CausalSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
                {
                    private readonly Dropout attn_dropout = nn.Dropout(0.1);

                    public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { }

                    public override Tensor forward(Tensor x, Tensor? mask)
                    {
                        var (q, k, v) = (x, x, x);

                        // Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
                        var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                        if (mask is not null)
                        {
                            att = att + mask; // additive
                        }

                        att = nn.functional.softmax(att, dim: -1);
                        att = attn_dropout.forward(att);
                        var y = att.{|SDPA007:matmul|}(v); // (B, nh, T, hs)

                        // Re-assemble all head outputs side by side.
                        return y.transpose(1, 2);
                    }
                }
            }
            """, indent, eol), Layout("""
            #nullable enable
            using TorchSharp.Modules;
            using static TorchSharp.torch;
            using System;
            using ChunkedAttention;

            namespace Models
            {
                /// <summary>
                /// Causal self-attention.
                /// </summary>
                [ChunkedAttention]
                public partial class CausalSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
                {
                    private readonly Dropout attn_dropout = nn.Dropout(0.1);

                    public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { }

                    public override Tensor forward(Tensor x, Tensor? mask)
                    {
                        var (q, k, v) = (x, x, x);

                        // Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
                        var y = ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, p: attn_dropout.training ? attn_dropout.p : 0.0); // (B, nh, T, hs)

                        // Re-assemble all head outputs side by side.
                        return y.transpose(1, 2);
                    }
                }
            }
            """, indent, eol));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Hand_written_chain_broken_over_lines_keeps_the_lines_around_it(string indent, string eol)
    {
        // A fluent chain written over several lines in an expression body, and a declared-only local
        // the chain assigns, and a reused local whose declaration goes with the chain (the final
        // assignment declares it): the call takes the chain's place, the lines around it are untouched.
        await HandWritten.VerifyAsync(Layout("""
            using System;
            using System.Linq;
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Models;

            #region Attention
            internal sealed class SelfAttention
            {
                public Tensor Forward(Tensor q, Tensor k, Tensor v) =>
                    q.matmul(k.transpose(-2, -1))
                        .div(8)
                        .softmax(-1)
                        .{|SDPA007:matmul|}(v);

                public Tensor Backward(Tensor q, Tensor k, Tensor v)
                {
                    Tensor output;
                    var scores = torch.matmul(q, k.transpose(-1, -2)); // scores
                    output = torch.{|SDPA007:matmul|}(scores.softmax(-1), v);
                    return output;
                }

                public Tensor Reused(Tensor q, Tensor k, Tensor v)
                {
                    Tensor att = q.matmul(k.transpose(-2, -1)); // raw scores
                    att = att.softmax(-1);
                    att = att.{|SDPA007:matmul|}(v); // output
                    return att;
                }
            }
            #endregion
            """, indent, eol), Layout("""
            using System;
            using System.Linq;
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Models;

            #region Attention
            [ChunkedAttention]
            internal sealed partial class SelfAttention
            {
                public Tensor Forward(Tensor q, Tensor k, Tensor v) =>
                    ChunkedScaledDotProductAttention(q, k, v, scale: 1.0 / 8);

                public Tensor Backward(Tensor q, Tensor k, Tensor v)
                {
                    Tensor output;
                    output = ChunkedScaledDotProductAttention(q, k, v, scale: 1.0);
                    return output;
                }

                public Tensor Reused(Tensor q, Tensor k, Tensor v)
                {
                    Tensor att = ChunkedScaledDotProductAttention(q, k, v, scale: 1.0); // output
                    return att;
                }
            }
            #endregion
            """, indent, eol));
    }

    [Fact]
    public async Task Type_on_an_unindented_line_without_modifiers()
    {
        await VerifyAsync("\t", "\r\n", """
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Declaration_sharing_its_line_with_other_code_gets_the_attribute_inline()
    {
        await Test.VerifyAsync(
            "using static TorchSharp.torch;\r\nnamespace Models { class SelfAttention { Tensor F(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q); } }\r\n",
            "using ChunkedAttention;\r\nusing static TorchSharp.torch;\r\nnamespace Models { [ChunkedAttention] partial class SelfAttention { Tensor F(Tensor q) => ChunkedScaledDotProductAttention(q, q, q); } }\r\n");
    }

    [Fact]
    public async Task System_directives_not_first_when_editorconfig_says_so()
    {
        var test = new Test
        {
            TestCode = Layout("""
                using Microsoft.Win32;
                using System;
                using static TorchSharp.torch;

                class SelfAttention
                {
                    Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
                }
                """, "\t", "\r\n"),
            FixedCode = Layout("""
                using ChunkedAttention;
                using Microsoft.Win32;
                using System;
                using static TorchSharp.torch;

                [ChunkedAttention]
                partial class SelfAttention
                {
                    Tensor Forward(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                }
                """, "\t", "\r\n"),
        }.WithEditorConfig("dotnet_sort_system_directives_first = false");
        await test.RunAsync();
    }

    private static Task VerifyAsync(string indent, string eol, string source, string fixedSource) =>
        Test.VerifyAsync(Layout(source, indent, eol), Layout(fixedSource, indent, eol));

    /// <summary>Rewrites a 4-space, LF text with <paramref name="indent"/> per level and <paramref name="eol"/> line endings.</summary>
    internal static string Layout(string text, string indent, string eol)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var match = Regex.Match(lines[i], "^(    )+");
            lines[i] = match.Success
                ? string.Concat(System.Linq.Enumerable.Repeat(indent, match.Length / 4)) + lines[i].Substring(match.Length)
                : lines[i];
        }

        return string.Join(eol, lines) + eol;
    }
}
