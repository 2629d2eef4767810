using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Tests.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Emit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Generator.Tests.HandWrittenAttention;

/// <summary>
/// The fix keeps the results: the hand-written classes below are fixed by the real analyzer and fix
/// engine, the original and the fixed code are compiled into one assembly (the fixed copy with the
/// generator, its attribute set to chunk on every device in chunks of 3 query rows and key blocks of
/// 4, so both the query-chunked and the online-softmax kernels run), and both run on the same CPU
/// tensors. fp32, max abs difference ≤ 1e-5 wherever the original's output is finite.
/// </summary>
public sealed class HandWrittenAttentionBehaviourTests
{
    private const string Original = """
        using System;
        using TorchSharp;
        using TorchSharp.Modules;
        using static TorchSharp.torch;

        #nullable enable

        namespace Original
        {
            public class NanoGptAttention
            {
                private readonly Dropout attn_dropout = nn.Dropout(0.2);
                private readonly Tensor bias = ones(16, 16).tril().view(1, 1, 16, 16);

                public NanoGptAttention() => attn_dropout.eval();

                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    long T = q.shape[2], S = k.shape[2];
                    var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                    att = att.masked_fill(bias[.., .., ..(int)T, ..(int)S] == 0, float.NegativeInfinity);
                    att = nn.functional.softmax(att, dim: -1);
                    att = attn_dropout.forward(att);
                    var y = att.matmul(v);
                    return y;
                }
            }

            public class LlamaAttention
            {
                public Tensor Run(Tensor x, Tensor k, Tensor v, Tensor? mask)
                {
                    long bsz = x.shape[0], heads = x.shape[1], seqlen = x.shape[2];
                    var headDim = 8;
                    var xq = x.transpose(1, 2).reshape(bsz, seqlen, heads, headDim).transpose(1, 2);
                    var keys = k.transpose(1, 2).reshape(bsz, k.shape[2], heads, headDim).transpose(1, 2);
                    var scores = torch.matmul(xq, keys.transpose(2, 3)) / Math.Sqrt(headDim);
                    if (mask is not null)
                    {
                        scores = scores + mask;
                    }

                    scores = nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(xq.dtype);
                    return torch.matmul(scores, v);
                }
            }

            public class BertAttention
            {
                public int HeadSize { get; } = 5;
                public bool Training { get; set; }

                public Tensor Run(Tensor query, Tensor key, Tensor value, Tensor? mask)
                {
                    var scores = torch.matmul(query, key.transpose(-1, -2));
                    scores = scores / Math.Sqrt(HeadSize);
                    if (mask is not null) scores = scores + mask;
                    var probs = nn.functional.softmax(scores, dim: -1);
                    probs = nn.functional.dropout(probs, 0.3, Training);
                    return torch.matmul(probs, value);
                }
            }

            public class VisionAttention
            {
                public double Scale = 0.3;

                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    var b = q.shape[0] * q.shape[1];
                    var q3 = q.reshape(b, q.shape[2], q.shape[3]);
                    var k3 = k.reshape(b, k.shape[2], k.shape[3]);
                    var v3 = v.reshape(b, v.shape[2], v.shape[3]);
                    var attn = torch.bmm(q3, k3.transpose(1, 2)) * Scale;
                    attn = attn.softmax(dim: 2);
                    return torch.bmm(attn, v3).reshape(q.shape[0], q.shape[1], q.shape[2], v.shape[3]);
                }
            }

            public class OneExpressionAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask) =>
                    q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(q.size(-1))).softmax(-1).matmul(v);
            }

            public class SamAttention
            {
                private readonly double scale = Math.Pow(8, -0.5) * 1.7;

                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    q = q * scale;
                    var attn = q.matmul(k.mT);
                    attn = attn.softmax(-1);
                    return attn.matmul(v);
                }
            }

            public class FillAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    var w = q.matmul(k.transpose(-2, -1)) * 0.4;
                    w = w.masked_fill(mask!.eq(0), -1e9);
                    return w.softmax(-1).matmul(v);
                }
            }

            public class MinValueFillAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    var w = q.matmul(k.transpose(-2, -1)) / 3.0;
                    w = w.masked_fill(mask!.logical_not(), float.MinValue);
                    return w.softmax(-1).matmul(v);
                }
            }

            public class InPlaceAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    var s = q.matmul(k.transpose(-2, -1));
                    s.masked_fill_(mask!.logical_not(), double.NegativeInfinity);
                    s /= Math.Sqrt(q.size(-1));
                    return s.softmax(-1).matmul(v);
                }
            }

            public class CompoundAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    var s = q.matmul(k.transpose(-2, -1));
                    s *= 0.6;
                    s += mask!;
                    return s.softmax(-1).matmul(v);
                }
            }

            public class UnscaledAttention
            {
                public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask)
                {
                    Tensor att = q.matmul(k.transpose(-2, -1)) * 0.1;
                    att = att.softmax(-1);
                    att = att.matmul(v);
                    return att;
                }
            }
        }
        """;

    private static readonly string[] Classes =
    {
        "NanoGptAttention", "LlamaAttention", "BertAttention", "VisionAttention", "OneExpressionAttention", "SamAttention",
        "FillAttention", "MinValueFillAttention", "InPlaceAttention", "CompoundAttention", "UnscaledAttention",
    };

    private static readonly Lazy<Task<(Assembly Assembly, string FixedSource)>> Compiled = new(CompileAsync);

    private const int Batch = 2;
    private const int Heads = 3;
    private const int Rows = 7;
    private const int Keys = 9;
    private const int Embedding = 8;
    private const int ValueEmbedding = 6;

    [Fact]
    public async Task Every_chain_is_fixed_into_one_call_that_chunks_on_the_cpu()
    {
        var (assembly, fixedSource) = await Compiled.Value;
        Assert.DoesNotContain("softmax", fixedSource, StringComparison.Ordinal);
        Assert.Equal(Classes.Length, Regex.Matches(fixedSource, @"ChunkedScaledDotProductAttention\(").Count);

        using var scope = NewDisposeScope();
        var (q, k, _) = Inputs(seed: 1);
        foreach (var type in Classes)
        {
            var options = (ChunkedAttentionOptions)assembly.GetType("Fixed." + type, throwOnError: true)!
                .GetField("ChunkedScaledDotProductAttentionOptions", BindingFlags.NonPublic | BindingFlags.Static)!
                .GetValue(null)!;
            Assert.Equal(3, options.ChunkSize);
            Assert.True(ChunkedSdpa.ShouldChunk(q, k, options), type + " chunks the test inputs");
        }
    }

    [Theory]
    [InlineData("NanoGptAttention", MaskKind.None)]
    [InlineData("LlamaAttention", MaskKind.Float)]
    [InlineData("LlamaAttention", MaskKind.None)]
    [InlineData("BertAttention", MaskKind.Float)]
    [InlineData("VisionAttention", MaskKind.None)]
    [InlineData("OneExpressionAttention", MaskKind.None)]
    [InlineData("SamAttention", MaskKind.None)]
    [InlineData("FillAttention", MaskKind.Keep)]
    [InlineData("MinValueFillAttention", MaskKind.KeepWithFullyMaskedRow)]
    [InlineData("InPlaceAttention", MaskKind.Keep)]
    [InlineData("CompoundAttention", MaskKind.Float)]
    [InlineData("UnscaledAttention", MaskKind.None)]
    public async Task Fixed_code_gives_the_original_results_with_chunking_forced(string type, MaskKind maskKind)
    {
        var (assembly, _) = await Compiled.Value;
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(seed: type.Length + (int)maskKind);
        var mask = Mask(maskKind, seed: 11);

        var original = Run(assembly, "Original." + type, q, k, v, mask);
        var fixedResult = Run(assembly, "Fixed." + type, q, k, v, mask);

        Assert.Equal(original.shape, fixedResult.shape);
        Assert.True(original.isfinite().all().item<bool>(), "the chosen inputs give finite outputs");
        AssertClose(original, fixedResult);
    }

    [Fact]
    public async Task A_fully_masked_row_that_gave_NaN_now_gives_zeros()
    {
        var (assembly, _) = await Compiled.Value;
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(seed: 5);
        var mask = Mask(MaskKind.KeepWithFullyMaskedRow, seed: 12);

        var original = Run(assembly, "Original.InPlaceAttention", q, k, v, mask);
        var fixedResult = Run(assembly, "Fixed.InPlaceAttention", q, k, v, mask);

        Assert.True(original[.., .., 0].isnan().all().item<bool>(), "row 0 is fully masked: the hand-written softmax gives NaN there");
        Assert.True(original[.., .., 1..].isfinite().all().item<bool>());
        Assert.True(fixedResult[.., .., 0].eq(0).all().item<bool>(), "SDPA gives zeros for the fully masked row");
        AssertClose(original.nan_to_num(0), fixedResult);
    }

    [Fact]
    public async Task A_minus_1e9_fill_keeps_a_fully_masked_row_when_the_scores_are_small()
    {
        // -1e9 absorbs any scaled score within ±32 in fp32, so a fully masked row is uniform in both.
        var (assembly, _) = await Compiled.Value;
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(seed: 6);
        var mask = Mask(MaskKind.KeepWithFullyMaskedRow, seed: 13);

        var original = Run(assembly, "Original.FillAttention", q, k, v, mask);
        var fixedResult = Run(assembly, "Fixed.FillAttention", q, k, v, mask);

        AssertClose(v.mean(new long[] { -2 }, keepdim: true), original[.., .., ..1]);
        AssertClose(original, fixedResult);
    }

    public enum MaskKind
    {
        None,
        Float,
        Keep,
        KeepWithFullyMaskedRow,
    }

    private static Tensor Run(Assembly assembly, string typeName, Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        var type = assembly.GetType(typeName, throwOnError: true)!;
        var instance = Activator.CreateInstance(type)!;
        return (Tensor)type.GetMethod("Run")!.Invoke(instance, new object?[] { q, k, v, mask })!;
    }

    private static (Tensor Q, Tensor K, Tensor V) Inputs(int seed)
    {
        var generator = new torch.Generator((ulong)seed);
        return (
            randn(new long[] { Batch, Heads, Rows, Embedding }, generator: generator),
            randn(new long[] { Batch, Heads, Keys, Embedding }, generator: generator),
            randn(new long[] { Batch, Heads, Keys, ValueEmbedding }, generator: generator));
    }

    // Float: additive, broadcast over heads, with large negative padding entries (never a whole row).
    // Keep: true = may attend, broadcast over batch and heads, the diagonal always kept.
    private static Tensor? Mask(MaskKind kind, int seed)
    {
        var generator = new torch.Generator((ulong)seed);
        var keep = rand(new long[] { Rows, Keys }, generator: generator).gt(0.4).logical_or(eye(Rows, Keys, dtype: ScalarType.Bool));
        return kind switch
        {
            MaskKind.Float => randn(new long[] { Batch, 1, Rows, Keys }, generator: generator).masked_fill(keep.logical_not(), -10000f),
            MaskKind.Keep => keep,
            MaskKind.KeepWithFullyMaskedRow => keep.logical_and(arange(Rows).ne(0).unsqueeze(1)),
            _ => null,
        };
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        double difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= 1e-5, $"max |difference| = {difference}");
    }

    private static async Task<(Assembly, string)> CompileAsync()
    {
        var run = await HandWrittenFixRunner.FixAllAsync(new[] { ("/src/Original.cs", Original) });
        Assert.Equal(Classes.Length, run.Reported.Count(d => d.Id == "SDPA007"));
        var fixedSource = run.Fixed["/src/Original.cs"]
            .Replace("namespace Original", "namespace Fixed", StringComparison.Ordinal)
            .Replace("[ChunkedAttention]", "[ChunkedAttention(ChunkSize = 3, KeyChunkSize = 4, Devices = AttentionDevices.All)]", StringComparison.Ordinal);

        var (output, problems) = HandWrittenFixRunner.CompileWithGenerator(new[] { Original, fixedSource }, "HandWrittenBehaviour");
        Assert.True(problems.IsEmpty, GeneratorHarness.Describe(problems) + Environment.NewLine + fixedSource);

        using var image = new MemoryStream();
        EmitResult emitted = output.Emit(image);
        Assert.True(emitted.Success, GeneratorHarness.Describe(emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        return (Assembly.Load(image.ToArray()), fixedSource);
    }
}
