using System.Threading.Tasks;
using Xunit;
using Test = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.HandWrittenAttention.HandWrittenAttentionCodeFixProvider>;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>
/// "Use chunked attention" on hand-written attention (SDPA007/SDPA008): each form becomes one
/// ChunkedScaledDotProductAttention call, statements and locals that only fed the chain go, comments
/// on kept lines stay, the type is marked and made partial. The framework applies every fix one by
/// one and through Fix All in document, project and solution, and compiles the result with the
/// generator: no errors, no warnings, no diagnostics left.
/// </summary>
public class HandWrittenAttentionFixTests
{
    [Fact]
    public async Task NanoGpt_chain_with_causal_fill_and_dropout_module()
    {
        await Test.VerifyAsync("""
            using System;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            public class CausalSelfAttention : nn.Module<Tensor, Tensor>
            {
                private readonly Dropout attn_dropout = nn.Dropout(0.1);
                private readonly Tensor bias = ones(8, 8).tril().view(1, 1, 8, 8);

                public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { }

                public override Tensor forward(Tensor x)
                {
                    var (q, k, v) = (x, x, x);
                    long T = x.shape[2];
                    // causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
                    var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                    att = att.masked_fill(bias[.., .., ..(int)T, ..(int)T] == 0, float.NegativeInfinity);
                    att = nn.functional.softmax(att, dim: -1);
                    att = attn_dropout.forward(att);
                    var y = att.{|SDPA007:matmul|}(v); // (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
                    return y;
                }
            }
            """, """
            using System;
            using ChunkedAttention;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            [ChunkedAttention]
            public partial class CausalSelfAttention : nn.Module<Tensor, Tensor>
            {
                private readonly Dropout attn_dropout = nn.Dropout(0.1);
                private readonly Tensor bias = ones(8, 8).tril().view(1, 1, 8, 8);

                public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { }

                public override Tensor forward(Tensor x)
                {
                    var (q, k, v) = (x, x, x);
                    long T = x.shape[2];
                    // causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
                    var y = ChunkedScaledDotProductAttention(q, k, v, attn_mask: bias[.., .., ..(int)T, ..(int)T] != 0, p: attn_dropout.training ? attn_dropout.p : 0.0); // (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
                    return y;
                }
            }
            """);
    }

    [Fact]
    public async Task Llama_null_checked_mask_and_fp32_softmax_pass_the_nullable_mask()
    {
        await Test.VerifyAsync("""
            #nullable enable
            using System;
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Models;

            internal sealed class LlamaAttention : nn.Module<Tensor, Tensor?, Tensor>
            {
                private readonly int nHeads = 4;
                private readonly int headDim = 16;

                public LlamaAttention() : base(nameof(LlamaAttention)) { }

                public override Tensor forward(Tensor x, Tensor? mask)
                {
                    long bsz = x.shape[0], seqlen = x.shape[1];
                    var xq = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);
                    var keys = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);
                    var values = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);

                    var scores = torch.matmul(xq, keys.transpose(2, 3)) / Math.Sqrt(headDim);
                    if (mask is not null)
                    {
                        scores = scores + mask; // (bs, n_local_heads, seqlen, cache_len + seqlen)
                    }

                    scores = nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(xq.dtype);
                    var output = torch.{|SDPA007:matmul|}(scores, values); // (bs, n_local_heads, seqlen, head_dim)
                    return output.transpose(1, 2).contiguous().view(bsz, seqlen, -1);
                }
            }
            """, """
            #nullable enable
            using System;
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Models;

            [ChunkedAttention]
            internal sealed partial class LlamaAttention : nn.Module<Tensor, Tensor?, Tensor>
            {
                private readonly int nHeads = 4;
                private readonly int headDim = 16;

                public LlamaAttention() : base(nameof(LlamaAttention)) { }

                public override Tensor forward(Tensor x, Tensor? mask)
                {
                    long bsz = x.shape[0], seqlen = x.shape[1];
                    var xq = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);
                    var keys = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);
                    var values = x.view(bsz, seqlen, nHeads, headDim).transpose(1, 2);

                    var output = ChunkedScaledDotProductAttention(xq, keys, values, attn_mask: mask); // (bs, n_local_heads, seqlen, head_dim)
                    return output.transpose(1, 2).contiguous().view(bsz, seqlen, -1);
                }
            }
            """);
    }

    [Fact]
    public async Task Bert_chain_with_explicit_scale_functional_dropout_and_leftover_local()
    {
        await Test.VerifyAsync("""
            #nullable enable
            using System;
            using TorchSharp;
            using static TorchSharp.torch;

            public class BertSelfAttention
            {
                public int HeadSize { get; } = 64;
                public double DropoutProb { get; } = 0.1;
                public bool Training { get; set; }

                public Tensor Forward(Tensor query, Tensor key, Tensor value, Tensor? attentionMask)
                {
                    var denominator = Math.Sqrt(HeadSize);
                    var scores = torch.matmul(query, key.transpose(-1, -2));
                    scores = scores / denominator;
                    if (attentionMask is not null) scores = scores + attentionMask;

                    // Normalize the attention scores to probabilities.
                    var probs = nn.functional.softmax(scores, dim: -1);
                    probs = nn.functional.dropout(probs, DropoutProb, Training);
                    var context = torch.{|SDPA007:matmul|}(probs, value);
                    return context.permute(0, 2, 1, 3);
                }
            }
            """, """
            #nullable enable
            using System;
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            [ChunkedAttention]
            public partial class BertSelfAttention
            {
                public int HeadSize { get; } = 64;
                public double DropoutProb { get; } = 0.1;
                public bool Training { get; set; }

                public Tensor Forward(Tensor query, Tensor key, Tensor value, Tensor? attentionMask)
                {
                    var denominator = Math.Sqrt(HeadSize);
                    var context = ChunkedScaledDotProductAttention(query, key, value, attn_mask: attentionMask, p: Training ? DropoutProb : 0.0, scale: 1.0 / denominator);
                    return context.permute(0, 2, 1, 3);
                }
            }
            """);
    }

    [Fact]
    public async Task Bmm_on_3D_tensors()
    {
        await Test.VerifyAsync("""
            using TorchSharp;
            using static TorchSharp.torch;

            public sealed class AttnBlock
            {
                private readonly double scale;

                public AttnBlock(int channels) => scale = System.Math.Pow(channels, -0.5);

                public Tensor Attend(Tensor q, Tensor k, Tensor v)
                {
                    var w = torch.bmm(q, k.transpose(1, 2)) * scale;
                    w = w.softmax(dim: 2);
                    return torch.{|SDPA007:bmm|}(w, v);
                }
            }
            """, """
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            [ChunkedAttention]
            public sealed partial class AttnBlock
            {
                private readonly double scale;

                public AttnBlock(int channels) => scale = System.Math.Pow(channels, -0.5);

                public Tensor Attend(Tensor q, Tensor k, Tensor v)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, scale: scale);
                }
            }
            """);
    }

    [Fact]
    public async Task One_expression_and_prescaled_query_in_two_chains_of_one_type()
    {
        await Test.VerifyAsync("""
            using System;
            using static TorchSharp.torch;

            struct VisionAttention
            {
                public double Scale { get; set; }

                public Tensor Short(Tensor q, Tensor k, Tensor v) =>
                    q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(q.size(-1))).softmax(-1).{|SDPA007:matmul|}(v);

                public Tensor Sam(Tensor q, Tensor k, Tensor v)
                {
                    q = q * Scale;
                    var attn = q.matmul(k.mT);
                    attn = attn.softmax(-1);
                    return attn.{|SDPA007:matmul|}(v);
                }
            }
            """, """
            using System;
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial struct VisionAttention
            {
                public double Scale { get; set; }

                public Tensor Short(Tensor q, Tensor k, Tensor v) =>
                    ChunkedScaledDotProductAttention(q, k, v);

                public Tensor Sam(Tensor q, Tensor k, Tensor v)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, scale: Scale);
                }
            }
            """);
    }

    [Fact]
    public async Task Finite_fill_becomes_an_additive_mask_in_the_query_dtype()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            class CrossAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor keep)
                {
                    var w = q.matmul(k.transpose(-2, -1)) * 0.125;
                    w = w.masked_fill(keep.eq(0), -1e9);
                    return w.softmax(-1).{|SDPA007:matmul|}(v);
                }

                Tensor Inverted(Tensor q, Tensor k, Tensor v, Tensor pad)
                {
                    var w = q.matmul(k.transpose(-2, -1));
                    w.masked_fill_(pad, float.NegativeInfinity);
                    return w.softmax(-1).{|SDPA007:matmul|}(v);
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class CrossAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor keep)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, attn_mask: keep.eq(0).to(q.dtype) * -1e9, scale: 0.125);
                }

                Tensor Inverted(Tensor q, Tensor k, Tensor v, Tensor pad)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, attn_mask: pad.logical_not(), scale: 1.0);
                }
            }
            """);
    }

    [Fact]
    public async Task Output_assigned_to_a_chain_local_becomes_its_declaration()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                {
                    Tensor att = q.matmul(k.transpose(-2, -1)) / 8.0;
                    att += mask;
                    att = att.softmax(-1);
                    att = att.{|SDPA007:matmul|}(v);
                    return att.transpose(1, 2);
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                {
                    Tensor att = ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, scale: 1.0 / 8.0);
                    return att.transpose(1, 2);
                }
            }
            """);
    }

    [Fact]
    public async Task Comments_on_kept_lines_stay_and_tabs_and_crlf_are_kept()
    {
        var source = "using static TorchSharp.torch;\r\n\r\nclass SelfAttention\r\n{\r\n\tTensor Forward(Tensor q, Tensor k, Tensor v)\r\n\t{\r\n\t\tvar probe = q.sum(); // kept\r\n\r\n\t\t// attention weights\r\n\t\tvar s = q.matmul(k.transpose(-2, -1)) / 8; // scores\r\n\t\ts = s.softmax(-1); /* weights */\r\n\t\t/* output */ var y = s.{|SDPA007:matmul|}(v) /* value */ ; // done\r\n\t\treturn y + probe;\r\n\t}\r\n}\r\n";
        var fixedSource = "using ChunkedAttention;\r\nusing static TorchSharp.torch;\r\n\r\n[ChunkedAttention]\r\npartial class SelfAttention\r\n{\r\n\tTensor Forward(Tensor q, Tensor k, Tensor v)\r\n\t{\r\n\t\tvar probe = q.sum(); // kept\r\n\r\n\t\t// attention weights\r\n\t\t/* output */ var y = ChunkedScaledDotProductAttention(q, k, v, scale: 1.0 / 8) /* value */ ; // done\r\n\t\treturn y + probe;\r\n\t}\r\n}\r\n";
        await Test.VerifyAsync(source, fixedSource);
    }

    [Fact]
    public async Task Outside_processors_SDPA008_is_fixed_when_enabled()
    {
        var test = new Test
        {
            TestCode = """
                using static TorchSharp.torch;

                static class Ops
                {
                    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor m) =>
                        (q.matmul(k.transpose(-2, -1)) * 0.25 + m).softmax(-1).{|SDPA008:matmul|}(v);
                }
                """,
            FixedCode = """
                using ChunkedAttention;
                using static TorchSharp.torch;

                [ChunkedAttention]
                static partial class Ops
                {
                    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor m) =>
                        ChunkedScaledDotProductAttention(q, k, v, attn_mask: m, scale: 0.25);
                }
                """,
        };
        await test.WithEditorConfig("dotnet_diagnostic.SDPA008.severity = warning").RunAsync();
    }

    [Fact]
    public async Task Fix_all_covers_several_chains_per_type_across_files()
    {
        var test = new Test();
        test.WithFile("/0/A.cs", """
            using TorchSharp;
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor A(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) * 0.5).softmax(-1).{|SDPA007:matmul|}(v);
                Tensor B(Tensor q, Tensor k, Tensor v) => torch.{|SDPA007:matmul|}(torch.softmax(q.matmul(k.transpose(-1, -2)) * 0.5, -1), v);
            }
            """, """
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor A(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v, scale: 0.5);
                Tensor B(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v, scale: 0.5);
            }
            """);
        test.WithFile("/0/B.cs", """
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor C(Tensor q, Tensor k, Tensor v)
                {
                    var w = q.bmm(k.transpose(1, 2)).softmax(-1);
                    return w.{|SDPA007:bmm|}(v);
                }
            }

            class CrossAttention
            {
                Tensor D(Tensor q, Tensor k, Tensor v, Tensor m) => (q.matmul(k.transpose(-2, -1)) + m).softmax(-1).{|SDPA007:matmul|}(v);
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                Tensor C(Tensor q, Tensor k, Tensor v)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, scale: 1.0);
                }
            }

            [ChunkedAttention]
            partial class CrossAttention
            {
                Tensor D(Tensor q, Tensor k, Tensor v, Tensor m) => ChunkedScaledDotProductAttention(q, k, v, attn_mask: m, scale: 1.0);
            }
            """);
        await test.RunAsync();
    }

    [Fact]
    public async Task Disposed_and_using_intermediates_go_with_the_chain()
    {
        await Test.VerifyAsync("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Explicit(Tensor q, Tensor k, Tensor v)
                {
                    var scores = q.matmul(k.transpose(-2, -1)) / 8;
                    var weights = scores.softmax(-1);
                    scores.Dispose();
                    var y = weights.{|SDPA007:matmul|}(v);
                    weights.Dispose();
                    return y;
                }

                Tensor Scoped(Tensor q, Tensor k, Tensor v)
                {
                    using var scores = q.matmul(k.transpose(-2, -1)) * 0.5;
                    using var weights = scores.softmax(-1);
                    return weights.{|SDPA007:matmul|}(v);
                }
            }
            """, """
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class SelfAttention
            {
                Tensor Explicit(Tensor q, Tensor k, Tensor v)
                {
                    var y = ChunkedScaledDotProductAttention(q, k, v, scale: 1.0 / 8);
                    return y;
                }

                Tensor Scoped(Tensor q, Tensor k, Tensor v)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, scale: 0.5);
                }
            }
            """);
    }

    [Fact]
    public async Task Other_spellings_of_each_step()
    {
        await Test.VerifyAsync("""
            #nullable enable
            using TorchSharp;
            using static TorchSharp.torch;

            class CrossAttention
            {
                Tensor Swapped(Tensor q, Tensor k, Tensor v, Tensor? pad)
                {
                    var s = q.matmul(k.swapaxes(-1, -2)) * 0.25;
                    if (pad is not null) s = s.masked_fill(pad == 0, double.NegativeInfinity);
                    var w = special.softmax(s, -1).type_as(q);
                    return w.{|SDPA007:matmul|}(v);
                }

                Tensor Permuted(Tensor q, Tensor k, Tensor v, Tensor? bias)
                {
                    var s = q.matmul(k.permute(0, 1, 3, 2));
                    if (!(bias is null))
                    {
                        s += bias.unsqueeze(1);
                    }

                    return nn.functional.dropout(s.softmax(-1), 0.2).{|SDPA007:matmul|}(v);
                }
            }
            """, """
            #nullable enable
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class CrossAttention
            {
                Tensor Swapped(Tensor q, Tensor k, Tensor v, Tensor? pad)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, attn_mask: pad?.ne(0), scale: 0.25);
                }

                Tensor Permuted(Tensor q, Tensor k, Tensor v, Tensor? bias)
                {
                    return ChunkedScaledDotProductAttention(q, k, v, attn_mask: bias?.unsqueeze(1), p: 0.2, scale: 1.0);
                }
            }
            """);
    }
}
