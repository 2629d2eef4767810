using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;
using Xunit;

namespace ChunkedAttention.EndToEnd.Tests;

public sealed partial class PackageEndToEndTests
{
    /// <summary>
    /// Hand-written attention (SDPA007) through the packed package: flagged by the build, fixed by
    /// <c>dotnet format analyzers --diagnostics SDPA007</c>, built clean, and run with chunking forced
    /// against an untouched copy of the original code.
    /// </summary>
    [Fact]
    public void HandWrittenAttentionIsFixedByDotnetFormatAndGivesTheOriginalResults()
    {
        string project = Path.Combine(_package.WorkRoot, "consumer-handwritten");
        WriteHandWrittenConsumerProject(project);

        // 1. Both hand-written modules are flagged; the reference copy (not an attention processor) is not.
        var first = DotnetCli.Run(project, null, "build", "-nologo", "-clp:NoSummary").ShouldSucceed("first build");
        string[] sdpa007 = DiagnosticLines(first.Output, "SDPA007");
        Assert.True(sdpa007.Length == 2, "expected SDPA007 on both modules, got:" + Environment.NewLine + first.Output);
        Assert.All(sdpa007, line => Assert.Contains("Model.cs", line));
        Assert.Empty(DiagnosticLines(first.Output, "SDPA008"));

        // 2. The user accepts the fix for the whole project.
        DotnetCli.Run(project, null, "format", "analyzers", "--diagnostics", "SDPA007", "--verbosity", "minimal")
            .ShouldSucceed("dotnet format analyzers --diagnostics SDPA007");
        string fixedSource = File.ReadAllText(Path.Combine(project, "Model.cs"));
        Assert.DoesNotContain("softmax", fixedSource);
        Assert.Equal(2, Regex.Matches(fixedSource, @"ChunkedScaledDotProductAttention\(").Count);
        Assert.Contains("ChunkedScaledDotProductAttention(q, k, v, attn_mask: bias[.., .., ..(int)T, ..(int)S] != 0, p: attn_dropout.training ? attn_dropout.p : 0.0)", fixedSource);
        Assert.Contains("ChunkedScaledDotProductAttention(xq, keys, values, attn_mask: mask)", fixedSource);
        Assert.Contains("// scaled dot-product scores; heads stay in dim 1", fixedSource);
        Assert.Matches(@"\[(ChunkedAttention\.)?ChunkedAttention(Attribute)?\]\s*public sealed partial class CausalSelfAttention", fixedSource);
        Assert.Matches(@"\[(ChunkedAttention\.)?ChunkedAttention(Attribute)?\]\s*public sealed partial class LlamaAttention", fixedSource);
        Assert.Contains("softmax", File.ReadAllText(Path.Combine(project, "Reference.cs"))); // outside processors: untouched

        // 3. The fixed project builds with no diagnostics of ours.
        var second = DotnetCli.Run(project, null, "build", "-nologo", "--no-incremental").ShouldSucceed("build after the fix");
        Assert.Empty(DiagnosticLines(second.Output, "SDPA00"));

        // 4. Chunked (forced on CPU, small chunks so several are used) equals the original code.
        var environment = new Dictionary<string, string?> { ["CHUNKED_ATTENTION"] = "always", ["CHUNKED_ATTENTION_CHUNK_SIZE"] = "64" };
        var run = DotnetCli.Run(project, environment, "run", "--no-build").ShouldSucceed("running the fixed project");
        Match chunked = Regex.Match(run.Output, @"should-chunk (\w+)");
        Match diff = Regex.Match(run.Output, @"max-diff ([0-9.eE+-]+)");
        Assert.True(chunked.Success && diff.Success, "unexpected program output:" + Environment.NewLine + run.Output);
        Assert.Equal("True", chunked.Groups[1].Value);
        Assert.InRange(double.Parse(diff.Groups[1].Value, CultureInfo.InvariantCulture), 0.0, 1e-5);
    }

    private void WriteHandWrittenConsumerProject(string directory)
    {
        Directory.CreateDirectory(directory);
        WriteSharedConsumerFiles();

        WriteConsumerCsproj(directory);

        // SDPA007 is a warning by default; SDPA008 stays off, so the reference copy is left alone.
        File.WriteAllText(Path.Combine(directory, ".editorconfig"), "root = true\n");

        // The chains, as the modules are written; Reference.cs repeats them in a plain static class.
        const string Chains = """
                var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                att = att.masked_fill(bias[.., .., ..(int)T, ..(int)S] == 0, float.NegativeInfinity);
                att = nn.functional.softmax(att, dim: -1);
                att = attn_dropout.forward(att);
                var y = att.matmul(v);
        """;
        File.WriteAllText(Path.Combine(directory, "Model.cs"), $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace Consumer;

            public sealed class CausalSelfAttention : nn.Module
            {
                private readonly Dropout attn_dropout = nn.Dropout(0.1);
                private readonly Tensor bias = torch.ones(512, 512).tril().view(1, 1, 512, 512);

                public CausalSelfAttention() : base(nameof(CausalSelfAttention)) => RegisterComponents();

                public Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    long T = q.shape[2], S = k.shape[2];
            {{Chains}}
                    return y;
                }
            }

            public sealed class LlamaAttention : nn.Module
            {
                public LlamaAttention() : base(nameof(LlamaAttention)) { }

                public Tensor Forward(Tensor xq, Tensor keys, Tensor values, Tensor? mask)
                {
                    // scaled dot-product scores; heads stay in dim 1
                    var scores = torch.matmul(xq, keys.transpose(-2, -1)) / Math.Sqrt(xq.size(-1));
                    if (mask is not null)
                    {
                        scores = scores + mask;
                    }

                    scores = nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(xq.dtype);
                    var output = torch.matmul(scores, values);
                    return output;
                }
            }
            """);

        File.WriteAllText(Path.Combine(directory, "Reference.cs"), $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace Consumer;

            public static class Reference
            {
                public static Tensor Causal(Tensor q, Tensor k, Tensor v, Dropout attn_dropout, Tensor bias)
                {
                    long T = q.shape[2], S = k.shape[2];
            {{Chains}}
                    return y;
                }

                public static Tensor Llama(Tensor xq, Tensor keys, Tensor values, Tensor? mask)
                {
                    var scores = torch.matmul(xq, keys.transpose(-2, -1)) / Math.Sqrt(xq.size(-1));
                    if (mask is not null)
                    {
                        scores = scores + mask;
                    }

                    scores = nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(xq.dtype);
                    return torch.matmul(scores, values);
                }
            }
            """);

        File.WriteAllText(Path.Combine(directory, "Program.cs"), """
            using ChunkedAttention;
            using Consumer;
            using TorchSharp;
            using static TorchSharp.torch;

            manual_seed(11);
            using var q = randn(2, 4, 300, 16);
            using var k = randn(2, 4, 300, 16);
            using var v = randn(2, 4, 300, 16);
            using var mask = randn(2, 1, 300, 300).masked_fill(rand(2, 1, 300, 300).gt(0.7), -1e4);
            using var bias = torch.ones(512, 512).tril().view(1, 1, 512, 512);

            var causal = new CausalSelfAttention();
            causal.eval();
            using var fixedCausal = causal.Forward(q, k, v);
            var dropout = nn.Dropout(0.1);
            dropout.eval();
            using var referenceCausal = Reference.Causal(q, k, v, dropout, bias);
            using var fixedLlama = new LlamaAttention().Forward(q, k, v, mask);
            using var referenceLlama = Reference.Llama(q, k, v, mask);
            using var fixedUnmasked = new LlamaAttention().Forward(q, k, v, null);
            using var referenceUnmasked = Reference.Llama(q, k, v, null);
            double diff = new[]
            {
                (fixedCausal - referenceCausal).abs().max().ToDouble(),
                (fixedLlama - referenceLlama).abs().max().ToDouble(),
                (fixedUnmasked - referenceUnmasked).abs().max().ToDouble(),
            }.Max();
            Console.WriteLine($"should-chunk {ChunkedSdpa.ShouldChunk(q, k)}");
            Console.WriteLine($"max-diff {diff.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}");
            """);
    }
}
