// Calls in places that are not classes: an interface default method (no fix: no wrapper there),
// an enum-adjacent static class, extension methods, a static constructor, a local function.
using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Shapes
{
    public interface IAttention
    {
        Tensor Attend(Tensor q, Tensor k, Tensor v) => nn.functional.scaled_dot_product_attention(q, k, v);
    }

    public enum AttnKind { Self, Cross }

    public static class AttnExtensions
    {
        private static readonly Func<Tensor, Tensor> Identity;

        static AttnExtensions()
        {
            Identity = t => nn.functional.scaled_dot_product_attention(t, t, t);
        }

        public static Tensor SelfAttend(this Tensor x)
        {
            return Local(x);

            static Tensor Local(Tensor y) => nn.functional.scaled_dot_product_attention(y, y, y);
        }

        public static IEnumerable<Tensor> Many(this IEnumerable<Tensor> xs)
        {
            foreach (var x in xs)
            {
                yield return nn.functional.scaled_dot_product_attention(x, x, x, is_casual: x.shape[^2] > 1);
            }
        }
    }

    public class Attention : IAttention
    {
        public Tensor Last { get; private set; } = torch.zeros(1);

        public Tensor this[Tensor q] => nn.functional.scaled_dot_product_attention(q, q, q);

        public Tensor Cached
        {
            get => Last;
            set => Last = nn.functional.scaled_dot_product_attention(value, value, value);
        }

        public event EventHandler? Done;

        public Attention()
        {
            Last = nn.functional.scaled_dot_product_attention(Last, Last, Last);
            Done?.Invoke(this, EventArgs.Empty);
        }
    }
}
