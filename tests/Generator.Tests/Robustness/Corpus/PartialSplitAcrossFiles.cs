// One attention type split over three files: the attribute on one part, 'partial' missing on
// another, the SDPA call in a third; the container split too.
// ==== file: Part1.cs
using ChunkedAttention;

namespace Corpus.Split
{
    public partial class Transformer
    {
        [ChunkedAttention(ChunkSize = 128)]
        public partial class Attention
        {
            private readonly int _heads = 8;
        }
    }
}
// ==== file: Part2.cs
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Split
{
    partial class Transformer
    {
        partial class Attention : nn.Module
        {
            public Attention() : base("attn") { }

            public Tensor Forward(Tensor q, Tensor k, Tensor v) =>
                nn.functional.scaled_dot_product_attention(q, k, v, is_casual: false);
        }
    }
}
// ==== file: Part3.cs
using TorchSharp;

namespace Corpus.Split;

public class Transformer
{
    public partial class Attention
    {
        public torch.Tensor Twice(torch.Tensor x) =>
            torch.nn.functional.scaled_dot_product_attention(x, x, x) + torch.nn.functional.scaled_dot_product_attention(x, x, x);
    }
}
