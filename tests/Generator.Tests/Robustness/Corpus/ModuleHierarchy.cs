// Processor detection through depth: Module subclass at depth 2 and 3, generic module bases,
// an interface named *Attn*, a plain helper class (SDPA005 only when enabled).
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Hierarchy
{
    public abstract class BaseBlock : nn.Module<Tensor, Tensor>
    {
        protected BaseBlock(string name) : base(name) { }
    }

    public abstract class MiddleBlock : BaseBlock
    {
        protected MiddleBlock(string name) : base(name) { }
    }

    public sealed class LeafBlock : MiddleBlock
    {
        public LeafBlock() : base("leaf") { }

        public override Tensor forward(Tensor x) => nn.functional.scaled_dot_product_attention(x, x, x);
    }

    public interface IAttnLike { }

    public sealed class Tagged : IAttnLike
    {
        public Tensor Go(Tensor x) => nn.functional.scaled_dot_product_attention(x, x, x);
    }

    public static class Helpers
    {
        public static Tensor Go(Tensor x) => nn.functional.scaled_dot_product_attention(x, x, x);
    }

    public sealed class Generic<T> : nn.Module<T, Tensor>
    {
        public Generic() : base("g") { }

        public override Tensor forward(T input) => input is Tensor t ? nn.functional.scaled_dot_product_attention(t, t, t) : zeros(1);
    }
}
