// A ViT encoder written in a functional style: static local functions, tuples, LINQ over heads,
// generic helper methods, a struct holding the projections, a readonly record struct config.
using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Corpus.Vit
{
    public readonly record struct VitConfig(int Patch, int Dim, int Heads, int Layers);

    public struct Projections
    {
        public Tensor Wq, Wk, Wv;

        public static Projections Create(int dim) => new()
        {
            Wq = randn(dim, dim) / Math.Sqrt(dim),
            Wk = randn(dim, dim) / Math.Sqrt(dim),
            Wv = randn(dim, dim) / Math.Sqrt(dim),
        };
    }

    public static class VitAttention
    {
        public static Tensor Encode(Tensor patches, VitConfig config, Projections[] layers)
        {
            return layers.Aggregate(patches, (x, p) => x + Attend(x, p, config.Heads));

            static Tensor Attend(Tensor x, Projections p, int heads)
            {
                (Tensor q, Tensor k, Tensor v) = (x.matmul(p.Wq), x.matmul(p.Wk), x.matmul(p.Wv));
                Tensor H(Tensor t) => t.unflatten(-1, new long[] { heads, -1 }).transpose(1, 2);
                return functional.scaled_dot_product_attention(H(q), H(k), H(v)).transpose(1, 2).flatten(-2);
            }
        }

        public static T Identity<T>(T value) where T : IDisposable => value;
    }
}
