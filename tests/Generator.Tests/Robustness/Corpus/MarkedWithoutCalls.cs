// Marked types that already use the wrapper, with every attribute spelling: full name with
// 'Attribute', global-qualified, positional plus named, flags from a const field.
using ChunkedAttention;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;

namespace Corpus.Spellings
{
    internal static class Settings
    {
        public const int Chunk = 2048;
        public const AttentionDevices Where = AttentionDevices.Cpu | AttentionDevices.Mps;
        public const long Cap = 64L * 1024 * 1024;
    }

    [ChunkedAttentionAttribute(Settings.Chunk)]
    public partial class A { public Tensor F(Tensor q) => ChunkedScaledDotProductAttention(q, q, q); }

    [global::ChunkedAttention.ChunkedAttention(ChunkSize = Settings.Chunk / 2, Devices = Settings.Where, MaxScoreElements = Settings.Cap)]
    public partial class B { public Tensor F(Tensor q) => ChunkedScaledDotProductAttention(q, q, q, null, 0.0, true); }

    [ChunkedAttention(KeyChunkSize = 64), System.Serializable]
    public partial class C<T> where T : notnull { public Tensor F(Tensor q) => ChunkedScaledDotProductAttention(query: q, key: q, value: q, enable_gqa: true); }

    public partial class D
    {
        [ChunkedAttention] private partial class E { }
        [ChunkedAttention] private partial class F { }
        [ChunkedAttention] private partial struct G { }
    }
}

namespace Corpus.Spellings.Other
{
    // Same simple names in another namespace: generated file names must not collide.
    [ChunkedAttention.ChunkedAttention] public partial class A { }
    public partial class D { [ChunkedAttention.ChunkedAttention] private partial class E { } }
}
