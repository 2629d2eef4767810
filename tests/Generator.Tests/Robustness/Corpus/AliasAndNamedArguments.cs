// Alias-qualified calls with named arguments in unusual orders, comments inside the argument list,
// and one call that passes is_casual: true together with a mask (TorchSharp throws: SDPA004).
using F = TorchSharp.torch.nn.functional;
using Tensor = TorchSharp.torch.Tensor;

namespace Corpus.Alias;

internal class CrossAttnProcessor
{
    public Tensor Forward(Tensor hidden, Tensor context, Tensor? mask)
    {
        var output = F.scaled_dot_product_attention(
            value: context,          // values come from the text encoder
            key: context,
            query: hidden,
            attn_mask: mask /* regional mask */);
        return output;
    }

    public Tensor Causal(Tensor q, Tensor k, Tensor v, Tensor mask) =>
        F.scaled_dot_product_attention(q, k, v, mask, 0.0, true);

    public Tensor CausalNamed(Tensor q, Tensor k, Tensor v, Tensor mask) =>
        F.scaled_dot_product_attention(q, k, v, is_casual: true, attn_mask: mask);

    public Tensor CausalWithNullMask(Tensor q, Tensor k, Tensor v) =>
        F.scaled_dot_product_attention(q, k, v, attn_mask: null, is_casual: true);

    private const bool Causal_ = true;

    public Tensor CausalConstant(Tensor q, Tensor k, Tensor v, Tensor m) =>
        F.scaled_dot_product_attention(q, k, v, m, is_casual: Causal_);
}
