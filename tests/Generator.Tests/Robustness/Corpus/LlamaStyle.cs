// A LLaMA-style decoder layer in modern C#: primary constructors, collection expressions,
// required members, file-local helper types, rotary embeddings, grouped-query attention.
using System;
using System.Collections.Generic;
using ChunkedAttention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.Llama;

public sealed record LlamaConfig
{
    public required int Dim { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public int MaxSequence { get; init; } = 4096;
    public double RopeTheta { get; init; } = 10_000.0;
}

file static class Rope
{
    public static (Tensor Cos, Tensor Sin) Frequencies(int headDim, int length, double theta)
    {
        var inv = 1.0 / pow(theta, arange(0, headDim, 2, dtype: ScalarType.Float32) / headDim);
        var t = arange(length, dtype: ScalarType.Float32);
        var freqs = outer(t, inv);
        return (freqs.cos(), freqs.sin());
    }

    public static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var halves = x.chunk(2, dim: -1);
        return cat([halves[0] * cos - halves[1] * sin, halves[0] * sin + halves[1] * cos], dim: -1);
    }
}

[ChunkedAttention(ChunkSize = 1024, KeyChunkSize = 2048, Devices = AttentionDevices.Cuda | AttentionDevices.Mps)]
public sealed partial class LlamaAttention(LlamaConfig config) : nn.Module<Tensor, Tensor>(nameof(LlamaAttention))
{
    private readonly Linear wq = nn.Linear(config.Dim, config.Dim, hasBias: false);
    private readonly Linear wk = nn.Linear(config.Dim, config.Dim / config.Heads * config.KvHeads, hasBias: false);
    private readonly Linear wv = nn.Linear(config.Dim, config.Dim / config.Heads * config.KvHeads, hasBias: false);
    private readonly Linear wo = nn.Linear(config.Dim, config.Dim, hasBias: false);
    private readonly List<int> _seen = [];

    public override Tensor forward(Tensor x)
    {
        using var _ = NewDisposeScope();
        long b = x.shape[0], l = x.shape[1];
        var headDim = config.Dim / config.Heads;
        var (cos, sin) = Rope.Frequencies(headDim / 2 * 2, (int)l, config.RopeTheta);

        var q = Rope.Rotate(wq.forward(x).view(b, l, config.Heads, headDim).transpose(1, 2), cos, sin);
        var k = Rope.Rotate(wk.forward(x).view(b, l, config.KvHeads, headDim).transpose(1, 2), cos, sin);
        var v = wv.forward(x).view(b, l, config.KvHeads, headDim).transpose(1, 2);
        _seen.Add((int)l);

        var o = ChunkedScaledDotProductAttention(q, k, v, is_casual: true, enable_gqa: config.KvHeads != config.Heads);
        return wo.forward(o.transpose(1, 2).reshape(b, l, config.Dim)).MoveToOuterDisposeScope();
    }
}

public sealed class NaiveLlamaAttention(LlamaConfig config) : nn.Module<Tensor, Tensor>(nameof(NaiveLlamaAttention))
{
    public override Tensor forward(Tensor x)
    {
        var heads = config.Heads;
        var q = x.unsqueeze(1).expand(-1, heads, -1, -1);
        var groups = config.Heads / config.KvHeads;
        var kv = q[.., ..config.KvHeads].repeat_interleave(groups, dim: 1);
        return nn.functional.scaled_dot_product_attention(q, kv, kv, is_casual: true).mean([1]);
    }
}
