// Diffusers-style attention processors: a base class whose name marks them as processors, many
// calls per type, async and pattern-matching code around the calls, a KV cache and GQA.
#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace Corpus.Diffusion
{
    public abstract class AttnProcessorBase
    {
        public abstract Tensor Process(Tensor hidden, Tensor? encoder, Tensor? mask);
    }

    public sealed class AttnProcessor2_0 : AttnProcessorBase
    {
        private readonly int _heads;

        public AttnProcessor2_0(int heads) => _heads = heads;

        public override Tensor Process(Tensor hidden, Tensor? encoder, Tensor? mask)
        {
            var source = encoder ?? hidden;
            long b = hidden.shape[0], l = hidden.shape[1], c = hidden.shape[2];
            Tensor Heads(Tensor t) => t.view(b, -1, _heads, c / _heads).transpose(1, 2);

            var result = mask switch
            {
                null => scaled_dot_product_attention(Heads(hidden), Heads(source), Heads(source)),
                { dtype: ScalarType.Bool } m => scaled_dot_product_attention(Heads(hidden), Heads(source), Heads(source), attn_mask: m),
                var m => scaled_dot_product_attention(Heads(hidden), Heads(source), Heads(source), m.to(hidden.dtype)),
            };
            return result.transpose(1, 2).reshape(b, l, c);
        }

        public async Task<Tensor> ProcessAsync(Tensor x, CancellationToken token)
        {
            await Task.Yield();
            token.ThrowIfCancellationRequested();
            return scaled_dot_product_attention(x, x, x, p: 0.0);
        }
    }

    public sealed class KvCacheAttention : nn.Module<Tensor, Tensor>
    {
        private readonly List<(Tensor K, Tensor V)> _cache = new();
        private readonly int _groups;

        public KvCacheAttention(int groups) : base(nameof(KvCacheAttention)) => _groups = groups;

        public override Tensor forward(Tensor q)
        {
            var (k, v) = _cache.Count > 0 ? _cache[^1] : (q, q);
            k = k.repeat_interleave(_groups, dim: 1);
            v = v.repeat_interleave(_groups, dim: 1);
            var causal = _cache.Count == 0;
            _cache.Add((k, v));
            return scaled_dot_product_attention(q, k, v, is_casual: causal);
        }
    }

    public class UNetBlock
    {
        private readonly AttnProcessorBase? _processor;

        public UNetBlock(AttnProcessorBase? processor) => _processor = processor;

        public Tensor Run(Tensor x) => _processor?.Process(x, null, null) ?? scaled_dot_product_attention(x, x, x);
    }
}
