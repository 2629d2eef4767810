// Attention computed by hand (softmax(QK^T / sqrt(d)) V) with no SDPA call at all, plus a
// Attention-named class whose method is called scaled_dot_product_attention: nothing to report.
using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Manual
{
    public static class ManualAttention
    {
        public static Tensor scaled_dot_product_attention(Tensor q, Tensor k, Tensor v, Tensor? mask = null)
        {
            var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(q.shape[^1]);
            if (mask is not null)
            {
                scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
            }

            return scores.softmax(-1).matmul(v);
        }
    }

    public sealed class HandRolledAttention : nn.Module<Tensor, Tensor>
    {
        public HandRolledAttention() : base(nameof(HandRolledAttention)) { }

        public override Tensor forward(Tensor x) => ManualAttention.scaled_dot_product_attention(x, x, x);
    }
}
