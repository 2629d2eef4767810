using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verify = ChunkedAttention.Generator.Tests.Analysis.AnalyzerVerifier<ChunkedAttention.Generator.Analysis.HandWrittenAttention.HandWrittenAttentionAnalyzer>;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>
/// SDPA007/SDPA008: every recognised form of hand-written attention is reported on the final
/// product's name, and nothing is reported where one SDPA call would not give the same results or
/// the rewrite would not be safe.
/// </summary>
public class HandWrittenAttentionAnalyzerTests
{
    private const string Usings = """
        using System;
        using TorchSharp;
        using TorchSharp.Modules;
        using static TorchSharp.torch;

        """;

    /// <summary>A class named like an attention processor holding <paramref name="members"/>.</summary>
    internal static string Processor(string members, string name = "SelfAttention") => Usings + $$"""
        public class {{name}}
        {
        {{members}}
        }
        """;

    // ---- forms that are reported ----

    public static TheoryData<string, string> Positives => new()
    {
        {
            "nanoGPT: scaled by 1/sqrt(k.size(-1)), causal masked_fill, softmax(dim:), dropout module",
            """
                private readonly Dropout attn_dropout = nn.Dropout(0.1);
                private readonly Tensor bias = ones(8, 8).tril().view(1, 1, 8, 8);

                public Tensor Forward(Tensor q, Tensor k, Tensor v, long T)
                {
                    var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                    att = att.masked_fill(bias[.., .., ..(int)T, ..(int)T] == 0, float.NegativeInfinity);
                    att = nn.functional.softmax(att, dim: -1);
                    att = attn_dropout.forward(att);
                    var y = att.{|SDPA007:matmul|}(v);
                    return y;
                }
            """
        },
        {
            "Llama: transpose(2, 3) on viewed 4-D tensors, null-checked mask, fp32 softmax and back",
            """
                private readonly int headDim = 16;

                public Tensor Forward(Tensor x, Tensor? mask, long bsz, long seqlen)
                {
                    var xq = x.view(bsz, seqlen, 4, headDim).transpose(1, 2);
                    var keys = x.view(bsz, seqlen, 4, headDim).transpose(1, 2);
                    var values = x.view(bsz, seqlen, 4, headDim).transpose(1, 2);
                    var scores = torch.matmul(xq, keys.transpose(2, 3)) / Math.Sqrt(headDim);
                    if (mask is not null)
                    {
                        scores = scores + mask;
                    }

                    scores = nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(xq.dtype);
                    var output = torch.{|SDPA007:matmul|}(scores, values);
                    return output.transpose(1, 2).contiguous().view(bsz, seqlen, -1);
                }
            """
        },
        {
            "BERT: torch.matmul with transpose(-1, -2), divided, additive mask, dropout module",
            """
                private readonly Dropout dropout = nn.Dropout(0.1);
                private readonly int headSize = 64;

                public Tensor Forward(Tensor query, Tensor key, Tensor value, Tensor? attentionMask)
                {
                    var scores = torch.matmul(query, key.transpose(-1, -2));
                    scores = scores / Math.Sqrt(headSize);
                    if (attentionMask is not null) scores = scores + attentionMask;
                    var probs = nn.functional.softmax(scores, dim: -1);
                    probs = dropout.call(probs);
                    var context = torch.{|SDPA007:matmul|}(probs, value);
                    return context;
                }
            """
        },
        {
            "vision: 3-D bmm, transpose(1, 2) proven by bmm, softmax dim 2",
            """
                private readonly double scale = 0.125;

                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var attn = torch.bmm(q, k.transpose(1, 2)) * scale;
                    attn = attn.softmax(dim: 2);
                    return torch.{|SDPA007:bmm|}(attn, v);
                }
            """
        },
        {
            "one expression in an expression body",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) =>
                    q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(q.size(-1))).softmax(-1).{|SDPA007:matmul|}(v);
            """
        },
        {
            "SAM: query pre-scaled by a field, mT",
            """
                private readonly double scale = 0.125;

                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    q = q * scale;
                    var attn = q.matmul(k.mT);
                    attn = attn.softmax(-1);
                    return attn.{|SDPA007:matmul|}(v);
                }
            """
        },
        {
            "compound and in-place steps: *=, +=, masked_fill_",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask, Tensor pad)
                {
                    var s = q.matmul(k.transpose(-2, -1));
                    s *= 0.125;
                    s += mask;
                    return s.softmax(-1).{|SDPA007:matmul|}(v);
                }

                public Tensor Filled(Tensor q, Tensor k, Tensor v, Tensor pad)
                {
                    var s = q.matmul(k.transpose(-2, -1)).mul(0.125);
                    s.masked_fill_(pad.eq(0), double.NegativeInfinity);
                    return s.softmax(-1).{|SDPA007:matmul|}(v);
                }
            """
        },
        {
            "functional dropout and finite fill",
            """
                public bool Training { get; set; }

                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor keep)
                {
                    var w = q.matmul(k.transpose(-2, -1)) / 8.0;
                    w = w.masked_fill(keep.logical_not(), -1e9);
                    w = nn.functional.dropout(w.softmax(-1), 0.1, Training);
                    return torch.{|SDPA007:matmul|}(w, v);
                }
            """
        },
        {
            "query scaled by a compound assignment",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    q *= 0.125;
                    return q.matmul(k.transpose(-2, -1)).softmax(-1).{|SDPA007:matmul|}(v);
                }
            """
        },
        {
            "query scaled in place before the chain: the statement stays (it changes the caller's tensor), the scores are unscaled",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    q.mul_(0.125);
                    return q.matmul(k.transpose(-2, -1)).softmax(-1).{|SDPA007:matmul|}(v);
                }
            """
        },
        {
            "a local holding the transposed key, torch.softmax, a declared-only local",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    Tensor weights;
                    var kT = k.transpose(-2, -1);
                    weights = torch.softmax(q.matmul(kT) * 0.25, -1);
                    return weights.{|SDPA007:matmul|}(v);
                }
            """
        },
    };

    [Theory]
    [MemberData(nameof(Positives))]
    public async Task Recognised_forms_are_reported(string description, string members)
    {
        _ = description;
        await Verify.VerifyAsync(Processor(members));
    }

    [Fact]
    public async Task Message_names_the_type_and_the_steps()
    {
        var test = Verify.Create(Processor("""
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask) =>
                    (q.matmul(k.transpose(-2, -1)) / 8 + mask).softmax(-1).{|#0:matmul|}(v);
            """));
        test.ExpectedDiagnostics.Clear();
        test.TestState.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.HandWrittenInProcessor)
            .WithLocation(0)
            .WithArguments("'SelfAttention'", "matmul, scale, additive mask, softmax"));
        await test.RunAsync();
    }

    // ---- SDPA008: outside attention processors, only when enabled ----

    private const string Helper = Usings + """
        public static class Ops
        {
            public static Tensor Attend(Tensor q, Tensor k, Tensor v) =>
                q.matmul(k.transpose(-2, -1)).div(8).softmax(-1).{|SDPA008:matmul|}(v);
        }
        """;

    [Fact]
    public async Task Outside_processors_nothing_is_reported_by_default()
    {
        await Verify.VerifyAsync(Helper.Replace("{|SDPA008:matmul|}", "matmul"));
    }

    [Fact]
    public async Task Outside_processors_SDPA008_is_reported_when_enabled()
    {
        await Verify.VerifyWithEditorConfigAsync("dotnet_diagnostic.SDPA008.severity = suggestion", Helper);
    }

    // ---- never rewritten: no diagnostic ----

    public static TheoryData<string, string> Negatives => new()
    {
        {
            "weights returned",
            """
                public (Tensor, Tensor) Forward(Tensor q, Tensor k, Tensor v)
                {
                    var w = q.matmul(k.transpose(-2, -1)).div(8).softmax(-1);
                    return (w.matmul(v), w);
                }
            """
        },
        {
            "scores logged",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var s = q.matmul(k.transpose(-2, -1)) / 8;
                    Console.WriteLine(s.max().item<float>());
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "weights stored in a field",
            """
                public Tensor? LastWeights;

                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var w = (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1);
                    LastWeights = w;
                    return w.matmul(v);
                }
            """
        },
        {
            "weights passed out",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, out Tensor weights)
                {
                    weights = (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1);
                    return weights.matmul(v);
                }
            """
        },
        {
            "scores captured by a lambda",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var s = q.matmul(k.transpose(-2, -1)) / 8;
                    Func<float> peek = () => s.max().item<float>();
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "softmax over dim 1",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(1).matmul(v);
            """
        },
        {
            "softmax over dim -2",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-2).matmul(v);
            """
        },
        {
            "key not transposed",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k) / 8).softmax(-1).matmul(v);
            """
        },
        {
            "transpose of other dims",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-3, -1)) / 8).softmax(-1).matmul(v);
            """
        },
        {
            "transpose(2, 3) on tensors of unknown rank",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(2, 3)) / 8).softmax(-1).matmul(v);
            """
        },
        {
            "mask added after softmax",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                {
                    var w = (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1);
                    w = w + mask;
                    return w.matmul(v);
                }
            """
        },
        {
            "scale applied after softmax",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)).softmax(-1) * 0.5).matmul(v);
            """
        },
        {
            "scores reassigned in a loop",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor[] biases)
                {
                    var s = q.matmul(k.transpose(-2, -1));
                    foreach (var b in biases) s = s + b;
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "scores from an if/else",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, bool scaled)
                {
                    Tensor s;
                    if (scaled) s = q.matmul(k.transpose(-2, -1)) / 8; else s = q.matmul(k.transpose(-2, -1));
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "masked_fill with zero",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor m) =>
                    (q.matmul(k.transpose(-2, -1)) / 8).masked_fill(m, 0).softmax(-1).matmul(v);
            """
        },
        {
            "two masks",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor a, Tensor b) =>
                    (q.matmul(k.transpose(-2, -1)) / 8 + a + b).softmax(-1).matmul(v);
            """
        },
        {
            "float mask added before the scale",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor m) =>
                    ((q.matmul(k.transpose(-2, -1)) + m) / 8).softmax(-1).matmul(v);
            """
        },
        {
            "scores multiplied by a tensor",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor gate) =>
                    (q.matmul(k.transpose(-2, -1)) * gate).softmax(-1).matmul(v);
            """
        },
        {
            "query reassigned between the product and the final matmul",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor m)
                {
                    var s = q.matmul(k.transpose(-2, -1)) / 8;
                    q = q + 1;
                    return s.softmax(-1).matmul(v + q);
                }
            """
        },
        {
            "a call with side effects between the steps",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var s = q.matmul(k.transpose(-2, -1)) / 8;
                    Console.WriteLine("scores ready");
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "a dropout module that is not TorchSharp's Dropout",
            """
                private readonly nn.Module<Tensor, Tensor> drop = nn.Dropout(0.1);

                public Tensor Forward(Tensor q, Tensor k, Tensor v) => drop.forward((q.matmul(k.transpose(-2, -1)) / 8).softmax(-1)).matmul(v);
            """
        },
        {
            "softmax input downcast",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).half().softmax(-1).matmul(v);
            """
        },
        {
            "preprocessor directive among the steps",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var s = q.matmul(k.transpose(-2, -1)) / 8;
            #if DEBUG
                    s = s + 0;
            #endif
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "baddbmm (TorchSharp 0.107 binds its operands in another order than PyTorch)",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v, float scale)
                {
                    var scores = torch.baddbmm(torch.empty(1, 1, 1), q, k.transpose(-1, -2), beta: 0, alpha: scale);
                    var probs = scores.softmax(-1);
                    return torch.bmm(probs, v);
                }
            """
        },
        {
            "scores scaled in place through an alias",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    var s = q.matmul(k.transpose(-2, -1));
                    var alias = s;
                    alias.mul_(0.125);
                    return s.softmax(-1).matmul(v);
                }
            """
        },
        {
            "no softmax at all",
            """
                public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).sigmoid().matmul(v);
            """
        },
    };

    [Theory]
    [MemberData(nameof(Negatives))]
    public async Task Never_rewritten_cases_are_not_reported(string description, string members)
    {
        _ = description;
        await Verify.VerifyAsync(Processor(members));
    }

    [Fact]
    public async Task Look_alike_methods_on_other_types_never_match()
    {
        await Verify.VerifyAsync(Usings + """
            public sealed class Matrix
            {
                public Matrix matmul(Matrix other) => this;
                public Matrix transpose(long a, long b) => this;
                public Matrix softmax(long dim) => this;
                public static Matrix operator /(Matrix m, double d) => m;
            }

            public class SelfAttention
            {
                public Matrix Forward(Matrix q, Matrix k, Matrix v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);
            }
            """);
    }

    [Fact]
    public async Task Generated_code_is_not_reported()
    {
        const string Chain = "public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);";
        var test = Verify.Create();
        test.TestState.Sources.Add(("/0/Designer.g.cs", Processor("    " + Chain, "GeneratedByName")));
        test.TestState.Sources.Add(("/0/Header.cs", "// <auto-generated/>\n" + Processor("    " + Chain, "GeneratedByHeader")));
        test.TestState.Sources.Add(("/0/Marked.cs", Processor("    [System.CodeDom.Compiler.GeneratedCode(\"tool\", \"1.0\")]\n    " + Chain, "MarkedAttention")));
        test.TestState.Sources.Add(("/0/MarkedType.cs", Processor("    " + Chain, "MarkedTypeAttention").Replace("public class", "[System.CodeDom.Compiler.GeneratedCode(\"tool\", \"1.0\")]\npublic class", System.StringComparison.Ordinal)));
        test.TestState.Sources.Add(("/0/Hand.cs", Processor("    " + Chain.Replace(".matmul(v)", ".{|SDPA007:matmul|}(v)", System.StringComparison.Ordinal), "HandAttention")));
        await test.RunAsync();
    }

    [Fact]
    public async Task Top_level_statements_are_not_reported()
    {
        var test = Verify.Create(Usings + """
            var q = randn(1, 2, 4, 8);
            var y = (q.matmul(q.transpose(-2, -1)) / 8).softmax(-1).matmul(q);
            Console.WriteLine(y.shape[0]);
            """);
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        await test.RunAsync();
    }

    // ---- reported only where the wrapper can be hosted (WrapperHostRules): else no fix, so no diagnostic ----

    private const string HostChain = "public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);";

    public static TheoryData<string, string> Unhostable => new()
    {
        { "a file-local type", $$"""file class FileLocalAttention { {{HostChain}} }""" },
        { "a type nested in a file-local type", $$"""file class Outer { class SelfAttention { {{HostChain}} } }""" },
        { "an interface's default method", $$"""public interface IAttention { {{HostChain}} }""" },
        {
            "a type that already declares ChunkedScaledDotProductAttention by hand",
            $$"""
            public class ClashingAttention
            {
                {{HostChain}}
                private static Tensor ChunkedScaledDotProductAttention(Tensor q, Tensor k, Tensor v) => q;
            }
            """
        },
        {
            "a type with a field named like the wrapper",
            $$"""public class FieldAttention { int ChunkedScaledDotProductAttention; {{HostChain}} }"""
        },
    };

    [Theory]
    [MemberData(nameof(Unhostable))]
    public async Task Types_that_cannot_host_the_wrapper_are_not_reported(string description, string type)
    {
        _ = description;

        // SDPA008 on as well, so neither rule can hide the case; the control type proves the analyzer ran.
        await Verify.VerifyWithEditorConfigAsync(
            "dotnet_diagnostic.SDPA008.severity = warning",
            Usings + type + "\n\n" + Processor("    " + HostChain.Replace(".matmul(v)", ".{|SDPA007:matmul|}(v)", System.StringComparison.Ordinal), "ControlAttention").Substring(Usings.Length));
    }

    [Fact]
    public async Task Without_the_runtime_nothing_is_reported()
    {
        var test = new Microsoft.CodeAnalysis.CSharp.Testing.CSharpAnalyzerTest<ChunkedAttention.Generator.Analysis.HandWrittenAttention.HandWrittenAttentionAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
            TestCode = Processor("""
                    public Tensor Forward(Tensor q, Tensor k, Tensor v) => (q.matmul(k.transpose(-2, -1)) / 8).softmax(-1).matmul(v);
                """),
        };
        RoslynTestSetup.AddProductReferences(test.TestState, includeRuntime: false);
        await test.RunAsync();
    }
}
