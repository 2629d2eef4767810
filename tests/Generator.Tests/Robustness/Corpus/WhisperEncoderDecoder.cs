// Whisper-style encoder/decoder: self-attention, cross-attention with cached keys, a ModuleList of
// blocks, calls behind conditional expressions, ternaries, switch statements and try/finally.
using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Corpus.Whisper
{
    public enum AttnMode { Self, Cross, CachedCross }

    public sealed class MultiHeadAttention : nn.Module
    {
        private readonly Linear query, key, value, @out;
        private readonly int n_head;
        private Tensor? cachedK, cachedV;

        public MultiHeadAttention(int n_state, int n_head) : base(nameof(MultiHeadAttention))
        {
            this.n_head = n_head;
            query = nn.Linear(n_state, n_state);
            key = nn.Linear(n_state, n_state, hasBias: false);
            value = nn.Linear(n_state, n_state);
            @out = nn.Linear(n_state, n_state);
            RegisterComponents();
        }

        private Tensor Split(Tensor t) => t.view(t.shape[0], t.shape[1], n_head, -1).permute(0, 2, 1, 3);

        public Tensor Forward(Tensor x, Tensor? xa, AttnMode mode, Tensor? mask = null)
        {
            Tensor q = Split(query.forward(x));
            Tensor k, v;
            switch (mode)
            {
                case AttnMode.Self:
                    k = Split(key.forward(x));
                    v = Split(value.forward(x));
                    break;
                case AttnMode.Cross when xa is not null:
                    k = Split(key.forward(xa));
                    v = Split(value.forward(xa));
                    break;
                case AttnMode.CachedCross:
                    k = cachedK ??= Split(key.forward(xa!));
                    v = cachedV ??= Split(value.forward(xa!));
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(mode), mode, "cross attention needs the audio features");
            }

            try
            {
                var wv = mask is null
                    ? F.scaled_dot_product_attention(q, k, v, is_casual: mode == AttnMode.Self)
                    : F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
                return @out.forward(wv.permute(0, 2, 1, 3).flatten(start_dim: 2));
            }
            finally
            {
                if (mode != AttnMode.CachedCross)
                {
                    cachedK = cachedV = null;
                }
            }
        }
    }

    public sealed class ResidualAttentionBlock : nn.Module
    {
        private readonly MultiHeadAttention attn;
        private readonly MultiHeadAttention? cross_attn;
        private readonly LayerNorm attn_ln;

        public ResidualAttentionBlock(int n_state, int n_head, bool cross) : base(nameof(ResidualAttentionBlock))
        {
            attn = new MultiHeadAttention(n_state, n_head);
            cross_attn = cross ? new MultiHeadAttention(n_state, n_head) : null;
            attn_ln = nn.LayerNorm(n_state);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Tensor? xa) =>
            cross_attn is { } c && xa is { } a
                ? c.Forward(x + attn.Forward(attn_ln.forward(x), null, AttnMode.Self), a, AttnMode.CachedCross)
                : x + attn.Forward(attn_ln.forward(x), null, AttnMode.Self);
    }

    public sealed class TextDecoder : nn.Module
    {
        private readonly ModuleList<ResidualAttentionBlock> blocks;

        public TextDecoder(int n_state, int n_head, int n_layer) : base(nameof(TextDecoder))
        {
            blocks = nn.ModuleList(Enumerable.Range(0, n_layer).Select(_ => new ResidualAttentionBlock(n_state, n_head, cross: true)).ToArray());
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Tensor xa) => blocks.Aggregate(x, (h, block) => block.Forward(h, xa));
    }
}
