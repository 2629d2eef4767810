// Encoder-decoder attention shapes written for this corpus: T5 (no scaling, an additive position
// bias, fp32 softmax cast back with type_as, functional dropout), Whisper (query and key each scaled
// by E^-1/4, the key permuted into place, the scores handed back), and a decoder step looping over a
// growing cache. "expect:" marks the analysis outcome.
#nullable enable
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.EncoderDecoder
{
    public sealed class T5Attention : nn.Module<Tensor, Tensor?, Tensor>
    {
        private readonly Linear q, k, v, o;
        private readonly int n_heads = 8, key_value_proj_dim = 64;
        private readonly double dropout = 0.1;

        public T5Attention() : base(nameof(T5Attention))
        {
            q = nn.Linear(512, 512, hasBias: false);
            k = nn.Linear(512, 512, hasBias: false);
            v = nn.Linear(512, 512, hasBias: false);
            o = nn.Linear(512, 512, hasBias: false);
            RegisterComponents();
        }

        private Tensor Shape(Tensor states, long batch) => states.view(batch, -1, n_heads, key_value_proj_dim).transpose(1, 2);

        public override Tensor forward(Tensor hidden_states, Tensor? position_bias)
        {
            var batch_size = hidden_states.shape[0];
            var query_states = hidden_states.view(batch_size, -1, n_heads, key_value_proj_dim).transpose(1, 2);
            var key_states = Shape(k.forward(hidden_states), batch_size);
            var value_states = Shape(v.forward(hidden_states), batch_size);

            // compute scores, equivalent of torch.einsum("bnqd,bnkd->bnqk", query_states, key_states)
            var scores = torch.matmul(query_states, key_states.transpose(-1, -2));
            scores += position_bias ?? torch.zeros(1, n_heads, scores.shape[2], scores.shape[3]);

            var attn_weights = nn.functional.softmax(scores.@float(), dim: -1).type_as(scores); // (batch_size, n_heads, seq_length, key_length)
            attn_weights = nn.functional.dropout(attn_weights, p: dropout, training: training);

            var attn_output = torch.matmul(attn_weights, value_states); // expect: declined IntermediateUsedElsewhere
            return o.forward(attn_output.transpose(1, 2).contiguous().view(batch_size, -1, n_heads * key_value_proj_dim));
        }
    }

    public sealed class T5LayerNormFreeAttention : nn.Module<Tensor, Tensor, Tensor>
    {
        public T5LayerNormFreeAttention() : base(nameof(T5LayerNormFreeAttention)) { }

        public override Tensor forward(Tensor query_states, Tensor position_bias)
        {
            var key_states = query_states.view(query_states.shape[0], query_states.shape[1], 8, 64).transpose(1, 2);
            var q4 = query_states.view(query_states.shape[0], query_states.shape[1], 8, 64).transpose(1, 2);
            var scores = torch.matmul(q4, key_states.transpose(3, 2));
            scores += position_bias;
            var attn_weights = nn.functional.softmax(scores.@float(), dim: -1).type_as(q4);
            return torch.matmul(attn_weights, key_states); // expect: SDPA007
        }
    }

    public sealed class WhisperMultiHeadAttention : nn.Module<Tensor, Tensor?, (Tensor, Tensor)>
    {
        private readonly Linear query, key, value, @out;
        private readonly int n_head;

        public WhisperMultiHeadAttention(int nState = 384, int nHead = 6) : base(nameof(WhisperMultiHeadAttention))
        {
            n_head = nHead;
            query = nn.Linear(nState, nState);
            key = nn.Linear(nState, nState, hasBias: false);
            value = nn.Linear(nState, nState);
            @out = nn.Linear(nState, nState);
            RegisterComponents();
        }

        private (Tensor Output, Tensor Scores) QkvAttention(Tensor q, Tensor k, Tensor v, Tensor? mask)
        {
            long n_batch = q.shape[0], n_ctx = q.shape[1], n_state = q.shape[2];
            var scale = Math.Pow(n_state / n_head, -0.25);
            q = q.view(n_batch, n_ctx, n_head, -1).permute(0, 2, 1, 3) * scale;
            k = k.view(n_batch, k.shape[1], n_head, -1).permute(0, 2, 3, 1) * scale;
            v = v.view(n_batch, v.shape[1], n_head, -1).permute(0, 2, 1, 3);

            var qk = q.matmul(k);
            if (mask is not null)
            {
                qk = qk + mask[..(int)n_ctx, ..(int)n_ctx];
            }

            qk = qk.@float();
            var w = nn.functional.softmax(qk, dim: -1).to(q.dtype);
            return (w.matmul(v).permute(0, 2, 1, 3).flatten(start_dim: 2), qk.detach()); // expect: declined ScoresNotQueryTimesKeyTransposed
        }

        public override (Tensor, Tensor) forward(Tensor x, Tensor? mask)
        {
            var (wv, qk) = QkvAttention(query.forward(x), key.forward(x), value.forward(x), mask);
            return (@out.forward(wv), qk);
        }
    }

    public sealed class GreedyDecoderAttention
    {
        public Tensor Decode(Tensor q0, Tensor memory, int steps)
        {
            var q = q0;
            var keys = memory;
            Tensor scores = torch.zeros(1);
            for (var step = 0; step < steps; step++)
            {
                scores = q.matmul(keys.transpose(-2, -1)) / 8.0;
                if (step > 0)
                {
                    scores = scores - scores.amax(new long[] { -1 }, keepdim: true);
                }

                q = scores.softmax(-1).matmul(keys); // expect: declined NotStraightLine
            }

            return q;
        }
    }
}
