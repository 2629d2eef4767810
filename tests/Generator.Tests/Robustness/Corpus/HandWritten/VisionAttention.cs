// Vision transformer attention as written for this corpus: 3-D bmm attention over (batch * heads)
// with a scale field, a Swin-style windowed attention adding a relative position bias and a shift
// mask, and a ViT block that keeps its weights for attention rollout. "expect:" marks the outcome.
#nullable enable
using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.Vision
{
    public sealed class BmmAttention : nn.Module<Tensor, Tensor>
    {
        private readonly Linear qkv;
        private readonly Linear proj;
        private readonly int num_heads;
        private readonly double scale;

        public BmmAttention(int dim = 384, int numHeads = 6) : base(nameof(BmmAttention))
        {
            num_heads = numHeads;
            scale = 1.0 / Math.Sqrt(dim / numHeads);
            qkv = nn.Linear(dim, dim * 3);
            proj = nn.Linear(dim, dim);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long B = x.shape[0], N = x.shape[1], C = x.shape[2];
            var t = qkv.forward(x).reshape(B, N, 3, num_heads, C / num_heads).permute(2, 0, 3, 1, 4).reshape(3, B * num_heads, N, C / num_heads);
            Tensor q = t[0], k = t[1], v = t[2];

            var attn = torch.bmm(q, k.transpose(1, 2)) * this.scale;
            attn = attn.softmax(dim: 2);
            var y = torch.bmm(attn, v); // expect: SDPA007
            return proj.forward(y.view(B, num_heads, N, C / num_heads).transpose(1, 2).reshape(B, N, C));
        }
    }

    public sealed class WindowAttention : nn.Module<Tensor, Tensor?, Tensor>
    {
        private readonly Linear qkv = nn.Linear(96, 288);
        private readonly Parameter relative_position_bias_table = nn.Parameter(torch.zeros(169, 3));
        private readonly Tensor relative_position_index = torch.zeros(new long[] { 49, 49 }, dtype: ScalarType.Int64);
        private readonly int num_heads = 3;
        private readonly double scale = Math.Pow(32, -0.5);

        public WindowAttention() : base(nameof(WindowAttention)) => RegisterComponents();

        public override Tensor forward(Tensor x, Tensor? mask)
        {
            long B_ = x.shape[0], N = x.shape[1], C = x.shape[2];
            var parts = qkv.forward(x).reshape(B_, N, 3, num_heads, C / num_heads).permute(2, 0, 3, 1, 4);
            Tensor q = parts[0], k = parts[1], v = parts[2];
            q = q * scale;
            var attn = q.matmul(k.transpose(-2, -1));

            var relative_position_bias = relative_position_bias_table[relative_position_index.view(-1)].view(N, N, -1);
            relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous(); // nH, Wh*Ww, Wh*Ww
            attn = attn + relative_position_bias.unsqueeze(0);

            if (mask is not null)
            {
                var nW = mask.shape[0];
                attn = attn.view(B_ / nW, nW, num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0);
                attn = attn.view(-1, num_heads, N, N);
            }

            attn = attn.softmax(-1);
            return attn.matmul(v).transpose(1, 2).reshape(B_, N, C); // expect: declined NotStraightLine
        }
    }

    public sealed class RolloutVitAttention : nn.Module<Tensor, Tensor>
    {
        private readonly Linear qkv = nn.Linear(192, 576);
        private readonly int num_heads = 3;

        /// <summary>The last forward's attention weights, for attention rollout.</summary>
        public List<Tensor> AttentionMaps { get; } = new();

        public RolloutVitAttention() : base(nameof(RolloutVitAttention)) => RegisterComponents();

        public override Tensor forward(Tensor x)
        {
            long B = x.shape[0], N = x.shape[1], C = x.shape[2];
            var t = qkv.forward(x).reshape(B, N, 3, num_heads, C / num_heads).permute(2, 0, 3, 1, 4);
            var (q, k, v) = (t[0], t[1], t[2]);
            var attn = (q.matmul(k.transpose(-2, -1)) * Math.Pow(C / num_heads, -0.5)).softmax(dim: -1);
            AttentionMaps.Add(attn.detach());
            return attn.matmul(v).transpose(1, 2).reshape(B, N, C); // expect: declined IntermediateUsedElsewhere
        }
    }
}
