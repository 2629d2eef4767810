// [ChunkedAttention] types in the shapes the generator must reproduce: nested in partial
// containers, generic with constraints, a struct, records, attribute values from constants and flags.
using System;
using ChunkedAttention;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Marked
{
    public static partial class Blocks
    {
        public partial class UNet<TConfig> where TConfig : class, new()
        {
            private const int Rows = 256;

            [ChunkedAttention(ChunkSize = Rows * 2, Devices = AttentionDevices.Cuda | AttentionDevices.Mps)]
            internal sealed partial class MidBlockAttention<TScale> : nn.Module where TScale : struct, IComparable<TScale>
            {
                public MidBlockAttention() : base("mid") { }

                public Tensor Attend(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v);
            }
        }
    }

    [ChunkedAttention(512, KeyChunkSize = 128, MaxScoreElements = 1L << 26)]
    public readonly partial struct AttentionKernel
    {
        public Tensor Run(Tensor q, Tensor k, Tensor v, Tensor? mask = null) =>
            ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, p: 0.0);
    }

    [ChunkedAttention(Devices = AttentionDevices.All)]
    public partial record AttentionSpec(int Heads, int HeadDim)
    {
        public Tensor Apply(Tensor q, Tensor k, Tensor v) => ChunkedScaledDotProductAttention(q, k, v, is_casual: true, scale: 1.0 / Math.Sqrt(HeadDim));
    }

    public partial record struct Holder
    {
        [ChunkedAttention(KeyChunkSize = 0)]
        private partial record struct InnerAttn
        {
            public Tensor Go(Tensor q, Tensor k, Tensor v) => torch.nn.functional.scaled_dot_product_attention(q, k, v);
        }
    }
}
