// GPT-2 / nanoGPT style causal self-attention, written for this corpus: a fused QKV projection split
// into heads, a registered lower-triangular bias, the hand-written branch next to a flash branch, and
// the Hugging Face style _attn helper that also returns the weights.
// Lines marked "expect:" state what the hand-written attention analysis must conclude there.
#nullable enable
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.Gpt2
{
    public sealed class GptConfig
    {
        public int BlockSize { get; init; } = 1024;
        public int NEmbd { get; init; } = 768;
        public int NHead { get; init; } = 12;
        public double Dropout { get; init; } = 0.1;
        public bool Flash { get; init; }
    }

    public sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
    {
        private readonly Linear c_attn;
        private readonly Linear c_proj;
        private readonly Dropout attn_dropout;
        private readonly Dropout resid_dropout;
        private readonly Tensor bias;
        private readonly int n_head;
        private readonly int n_embd;
        private readonly bool flash;

        public CausalSelfAttention(GptConfig config) : base(nameof(CausalSelfAttention))
        {
            c_attn = nn.Linear(config.NEmbd, 3 * config.NEmbd);
            c_proj = nn.Linear(config.NEmbd, config.NEmbd);
            attn_dropout = nn.Dropout(config.Dropout);
            resid_dropout = nn.Dropout(config.Dropout);
            n_head = config.NHead;
            n_embd = config.NEmbd;
            flash = config.Flash;
            bias = torch.tril(torch.ones(config.BlockSize, config.BlockSize)).view(1, 1, config.BlockSize, config.BlockSize);
            register_buffer("bias", bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var (B, T, C) = (x.size(0), x.size(1), x.size(2));

            // calculate query, key, values for all heads in batch and move head forward to be the batch dim
            var qkv = c_attn.forward(x).split(n_embd, dim: 2);
            var q = qkv[0].view(B, T, n_head, C / n_head).transpose(1, 2); // (B, nh, T, hs)
            var k = qkv[1].view(B, T, n_head, C / n_head).transpose(1, 2); // (B, nh, T, hs)
            var v = qkv[2].view(B, T, n_head, C / n_head).transpose(1, 2); // (B, nh, T, hs)

            Tensor y;
            if (flash)
            {
                // efficient attention using Flash Attention CUDA kernels
                y = nn.functional.scaled_dot_product_attention(q, k, v, p: training ? 0.1 : 0.0, is_casual: true);
            }
            else
            {
                // manual implementation of attention
                var att = q.matmul(k.transpose(-2, -1)) * (1.0 / Math.Sqrt(k.size(-1)));
                att = att.masked_fill(bias[.., .., ..(int)T, ..(int)T] == 0, float.NegativeInfinity);
                att = nn.functional.softmax(att, dim: -1);
                att = attn_dropout.forward(att);
                y = att.matmul(v); // expect: SDPA007 (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
            }

            y = y.transpose(1, 2).contiguous().view(B, T, C); // re-assemble all head outputs side by side
            return resid_dropout.forward(c_proj.forward(y)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The Hugging Face layout: _attn returns the weights too, for output_attentions.</summary>
    public sealed class GPT2Attention : nn.Module<Tensor, Tensor?, (Tensor, Tensor)>
    {
        private readonly Linear c_attn;
        private readonly Dropout attn_dropout = nn.Dropout(0.1);
        private readonly int num_heads = 12;
        private readonly int head_dim = 64;
        private readonly bool scale_attn_weights = true;

        public GPT2Attention() : base(nameof(GPT2Attention))
        {
            c_attn = nn.Linear(768, 3 * 768);
            RegisterComponents();
        }

        private (Tensor Output, Tensor Weights) _attn(Tensor query, Tensor key, Tensor value, Tensor? attention_mask)
        {
            var attn_weights = torch.matmul(query, key.transpose(-1, -2));
            if (scale_attn_weights)
            {
                attn_weights = attn_weights / Math.Sqrt(value.size(-1));
            }

            if (attention_mask is not null)
            {
                attn_weights = attn_weights + attention_mask;
            }

            attn_weights = nn.functional.softmax(attn_weights, dim: -1);
            attn_weights = attn_dropout.forward(attn_weights);
            var attn_output = torch.matmul(attn_weights, value); // expect: declined NotStraightLine
            return (attn_output, attn_weights);
        }

        private Tensor SplitHeads(Tensor tensor) =>
            tensor.view(tensor.shape[0], tensor.shape[1], num_heads, head_dim).permute(0, 2, 1, 3);

        public override (Tensor, Tensor) forward(Tensor hidden_states, Tensor? attention_mask)
        {
            var parts = c_attn.forward(hidden_states).split(768, dim: 2);
            var (output, weights) = _attn(SplitHeads(parts[0]), SplitHeads(parts[1]), SplitHeads(parts[2]), attention_mask);
            return (output.permute(0, 2, 1, 3).contiguous(), weights);
        }
    }
}
