// Stable Diffusion port shapes, written for this corpus: the UNet's cross-attention folding heads into
// the batch for 3-D bmm, the VAE mid-block attention that keeps the key already transposed, and a
// diffusers-style processor that builds the scores with baddbmm. "expect:" marks the outcome.
#nullable enable
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.StableDiffusion
{
    public sealed class CrossAttention : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
    {
        private readonly Linear to_q, to_k, to_v, to_out;
        private readonly int heads;
        private readonly float scale;

        public CrossAttention(int queryDim = 320, int? contextDim = null, int heads = 8, int dimHead = 40)
            : base(nameof(CrossAttention))
        {
            var innerDim = dimHead * heads;
            this.heads = heads;
            scale = (float)Math.Pow(dimHead, -0.5);
            to_q = nn.Linear(queryDim, innerDim, hasBias: false);
            to_k = nn.Linear(contextDim ?? queryDim, innerDim, hasBias: false);
            to_v = nn.Linear(contextDim ?? queryDim, innerDim, hasBias: false);
            to_out = nn.Linear(innerDim, queryDim);
            RegisterComponents();
        }

        private Tensor HeadToBatchDim(Tensor tensor)
        {
            long batch = tensor.shape[0], seq = tensor.shape[1], dim = tensor.shape[2];
            return tensor.reshape(batch, seq, heads, dim / heads).permute(0, 2, 1, 3).reshape(batch * heads, seq, dim / heads);
        }

        private Tensor BatchToHeadDim(Tensor tensor)
        {
            long batch = tensor.shape[0], seq = tensor.shape[1], dim = tensor.shape[2];
            return tensor.reshape(batch / heads, heads, seq, dim).permute(0, 2, 1, 3).reshape(batch / heads, seq, dim * heads);
        }

        public override Tensor forward(Tensor hidden_states, Tensor? context, Tensor? mask)
        {
            var query = HeadToBatchDim(to_q.forward(hidden_states));
            context ??= hidden_states;
            var key = HeadToBatchDim(to_k.forward(context));
            var value = HeadToBatchDim(to_v.forward(context));

            var attention_scores = torch.bmm(query, key.transpose(-1, -2)) * scale;
            var attention_probs = attention_scores.softmax(dim: -1);

            var hidden = torch.bmm(attention_probs, value); // expect: SDPA007
            return to_out.forward(BatchToHeadDim(hidden));
        }
    }

    public sealed class VaeAttnBlock : nn.Module<Tensor, Tensor>
    {
        private readonly GroupNorm norm;
        private readonly Conv2d q, k, v, proj_out;

        public VaeAttnBlock(int inChannels = 512) : base(nameof(VaeAttnBlock))
        {
            norm = nn.GroupNorm(32, inChannels, eps: 1e-6);
            q = nn.Conv2d(inChannels, inChannels, 1);
            k = nn.Conv2d(inChannels, inChannels, 1);
            v = nn.Conv2d(inChannels, inChannels, 1);
            proj_out = nn.Conv2d(inChannels, inChannels, 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h_ = norm.forward(x);
            var qx = q.forward(h_);
            var kx = k.forward(h_);
            var vx = v.forward(h_);

            // compute attention
            long b = qx.shape[0], c = qx.shape[1], h = qx.shape[2], w = qx.shape[3];
            qx = qx.reshape(b, c, h * w).permute(0, 2, 1); // b,hw,c
            kx = kx.reshape(b, c, h * w); // b,c,hw
            var w_ = torch.bmm(qx, kx); // b,hw,hw    w[b,i,j]=sum_c q[b,i,c]k[b,c,j]
            w_ = w_ * Math.Pow(c, -0.5);
            w_ = nn.functional.softmax(w_, dim: 2);

            // attend to values
            vx = vx.reshape(b, c, h * w);
            w_ = w_.permute(0, 2, 1); // b,hw,hw (first hw of k, second of q)
            h_ = torch.bmm(vx, w_); // b, c,hw (hw of q) h_[b,c,j] = sum_i v[b,c,i] w_[b,i,j]
            h_ = h_.reshape(b, c, h, w);
            return x + proj_out.forward(h_);
        }
    }

    public sealed class AttnProcessor
    {
        public Tensor Call(Tensor query, Tensor key, Tensor value, Tensor? attentionMask, float scale)
        {
            Tensor baddbmmInput;
            float beta;
            if (attentionMask is null)
            {
                baddbmmInput = torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype: query.dtype, device: query.device);
                beta = 0;
            }
            else
            {
                baddbmmInput = attentionMask;
                beta = 1;
            }

            var attentionScores = torch.baddbmm(baddbmmInput, query, key.transpose(-1, -2), beta: beta, alpha: scale);
            var attentionProbs = attentionScores.softmax(dim: -1);
            return torch.bmm(attentionProbs, value); // expect: declined ScoresNotQueryTimesKeyTransposed
        }
    }
}
