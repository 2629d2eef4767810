// Every way a [ChunkedAttention] target can be wrong: not partial, a container not partial, bad
// settings, a name clash with the generated members, the attribute on an interface-like misuse.
using ChunkedAttention;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Invalid
{
    [ChunkedAttention]
    public class NotPartialAttention
    {
        public Tensor F(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
    }

    public class Outer
    {
        public class Middle
        {
            [ChunkedAttention(64)]
            public partial class DeepAttention { }
        }
    }

    [ChunkedAttention(ChunkSize = -1, KeyChunkSize = -2, MaxScoreElements = -1, Devices = AttentionDevices.None)]
    public partial class BadSettings { }

    [ChunkedAttention(-5)]
    public partial struct NegativePositional { }

    [ChunkedAttention]
    public partial class Clash
    {
        private static Tensor ChunkedScaledDotProductAttention(Tensor q, Tensor k, Tensor v) => q;
    }

    [ChunkedAttention]
    public partial class FieldClash
    {
        private int ChunkedScaledDotProductAttentionOptions;
    }

    [ChunkedAttention]
    public static partial class StaticAttention
    {
        public static Tensor Go(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
    }

    [ChunkedAttention]
    public abstract partial class AbstractAttention<T> where T : unmanaged
    {
        public abstract Tensor Forward(Tensor x);
    }
}
