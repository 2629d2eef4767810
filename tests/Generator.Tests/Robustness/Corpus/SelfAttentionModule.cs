// A GPT-style causal self-attention block, written the way most TorchSharp ports are:
// a Module<Tensor, Tensor> subclass calling SDPA through 'using static TorchSharp.torch'.
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.Gpt
{
    public sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
    {
        private readonly Linear c_attn;
        private readonly Linear c_proj;
        private readonly int n_head;
        private readonly double dropout;

        public CausalSelfAttention(int n_embd, int n_head, double dropout) : base(nameof(CausalSelfAttention))
        {
            if (n_embd % n_head != 0)
            {
                throw new ArgumentException("n_embd must be a multiple of n_head", nameof(n_embd));
            }

            this.n_head = n_head;
            this.dropout = dropout;
            c_attn = nn.Linear(n_embd, 3 * n_embd);
            c_proj = nn.Linear(n_embd, n_embd);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
            var qkv = c_attn.forward(x).split(C, dim: 2);
            Tensor q = qkv[0].view(B, T, n_head, C / n_head).transpose(1, 2);
            Tensor k = qkv[1].view(B, T, n_head, C / n_head).transpose(1, 2);
            Tensor v = qkv[2].view(B, T, n_head, C / n_head).transpose(1, 2);

            var y = nn.functional.scaled_dot_product_attention(q, k, v, p: training ? dropout : 0.0, is_casual: true);
            y = y.transpose(1, 2).contiguous().view(B, T, C);
            return c_proj.forward(y).MoveToOuterDisposeScope();
        }
    }
}
