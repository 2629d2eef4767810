// Segment-Anything style attention, written for this corpus: the image encoder's windowed attention
// with a pre-scaled query and decomposed relative positions added by a helper, and the mask
// decoder's attention that separates heads by helper and transposes the key with permute.
// "expect:" marks the analysis outcome.
#nullable enable
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.Sam
{
    public sealed class EncoderAttention : nn.Module<Tensor, Tensor>
    {
        private readonly int num_heads;
        private readonly double scale;
        private readonly Linear qkv;
        private readonly Linear proj;
        private readonly bool use_rel_pos;
        private readonly Tensor rel_pos_h = torch.zeros(27, 64);
        private readonly Tensor rel_pos_w = torch.zeros(27, 64);

        public EncoderAttention(int dim = 768, int numHeads = 12, bool useRelPos = true) : base(nameof(EncoderAttention))
        {
            num_heads = numHeads;
            var head_dim = dim / numHeads;
            scale = Math.Pow(head_dim, -0.5);
            qkv = nn.Linear(dim, dim * 3);
            proj = nn.Linear(dim, dim);
            use_rel_pos = useRelPos;
            RegisterComponents();
        }

        private static Tensor AddDecomposedRelPos(Tensor attn, Tensor q, Tensor relH, Tensor relW, long h, long w)
        {
            var bsz = q.shape[0];
            var rq = q.reshape(bsz, h, w, q.shape[2]);
            var relativeH = torch.einsum("bhwc,hkc->bhwk", rq, relH[..(int)h, ..(int)h]);
            var relativeW = torch.einsum("bhwc,wkc->bhwk", rq, relW[..(int)w, ..(int)w]);
            return (attn.view(bsz, h, w, h, w) + relativeH.unsqueeze(-1) + relativeW.unsqueeze(-2)).view(bsz, h * w, h * w);
        }

        public override Tensor forward(Tensor x)
        {
            long B = x.shape[0], H = x.shape[1], W = x.shape[2];
            // qkv with shape (3, B, nHead, H * W, C)
            var parts = qkv.forward(x).reshape(B, H * W, 3, num_heads, -1).permute(2, 0, 3, 1, 4);
            // q, k, v with shape (B * nHead, H * W, C)
            var all = parts.reshape(3, B * num_heads, H * W, -1).unbind(0);
            Tensor q = all[0], k = all[1], v = all[2];

            var attn = (q * scale).matmul(k.transpose(-2, -1));
            if (use_rel_pos)
            {
                attn = AddDecomposedRelPos(attn, q, rel_pos_h, rel_pos_w, H, W);
            }

            attn = attn.softmax(dim: -1);
            var y = attn.matmul(v).view(B, num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1); // expect: declined NotStraightLine
            return proj.forward(y);
        }
    }

    public sealed class DecoderAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
    {
        private readonly Linear q_proj, k_proj, v_proj, out_proj;
        private readonly int num_heads;

        public DecoderAttention(int embeddingDim = 256, int numHeads = 8, int downsampleRate = 1) : base(nameof(DecoderAttention))
        {
            var internal_dim = embeddingDim / downsampleRate;
            num_heads = numHeads;
            q_proj = nn.Linear(embeddingDim, internal_dim);
            k_proj = nn.Linear(embeddingDim, internal_dim);
            v_proj = nn.Linear(embeddingDim, internal_dim);
            out_proj = nn.Linear(internal_dim, embeddingDim);
            RegisterComponents();
        }

        private static Tensor SeparateHeads(Tensor x, int numHeads)
        {
            long b = x.shape[0], n = x.shape[1], c = x.shape[2];
            return x.reshape(b, n, numHeads, c / numHeads).transpose(1, 2); // B x N_heads x N_tokens x C_per_head
        }

        private static Tensor RecombineHeads(Tensor x)
        {
            long b = x.shape[0], nHeads = x.shape[1], nTokens = x.shape[2], cPerHead = x.shape[3];
            return x.transpose(1, 2).reshape(b, nTokens, nHeads * cPerHead); // B x N_tokens x C
        }

        public override Tensor forward(Tensor q, Tensor k, Tensor v)
        {
            // Input projections
            q = q_proj.forward(q);
            k = k_proj.forward(k);
            v = v_proj.forward(v);

            // Separate into heads
            q = SeparateHeads(q, num_heads);
            k = SeparateHeads(k, num_heads);
            v = SeparateHeads(v, num_heads);

            // Attention
            var c_per_head = q.shape[3];
            var attn = q.matmul(k.permute(0, 1, 3, 2)); // B x N_heads x N_tokens x N_tokens
            attn = attn / Math.Sqrt(c_per_head);
            attn = torch.softmax(attn, dim: -1);

            // Get output
            var @out = attn.matmul(v); // expect: SDPA007
            @out = RecombineHeads(@out);
            return out_proj.forward(@out);
        }
    }
}
