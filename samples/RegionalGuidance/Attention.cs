using ChunkedAttention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RegionalGuidance;

/// <summary>
/// Multi-head attention as diffusion ports write it (to_q/to_k/to_v/to_out). Self-attention when
/// <c>context</c> is null, cross-attention to the text tokens otherwise. The one ChunkedAttention
/// touch: the attribute, and <c>ChunkedScaledDotProductAttention</c> where the port called
/// <c>nn.functional.scaled_dot_product_attention</c> (the SDPA001 code fix makes exactly that edit).
/// </summary>
[ChunkedAttention(ChunkSize = 1024)]
public sealed partial class Attention : nn.Module
{
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly Linear to_out;
    private readonly int _heads;

    /// <summary>The settings the generated wrapper runs with (its generated options field), for the sample's report.</summary>
    internal static ChunkedAttentionOptions Settings => ChunkedScaledDotProductAttentionOptions;

    public Attention(string name, int queryDim, int contextDim, int heads) : base(name)
    {
        _heads = heads;
        to_q = nn.Linear(queryDim, queryDim, hasBias: false);
        to_k = nn.Linear(contextDim, queryDim, hasBias: false);
        to_v = nn.Linear(contextDim, queryDim, hasBias: false);
        to_out = nn.Linear(queryDim, queryDim);
        RegisterComponents();
    }

    /// <param name="hidden">(B, L, C) latent tokens.</param>
    /// <param name="context">(B, S, Cctx) text tokens, or null for self-attention.</param>
    /// <param name="mask">Boolean (B, 1, L, S) regional mask (true = may attend), or null.</param>
    public Tensor Forward(Tensor hidden, Tensor? context = null, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        Tensor source = context ?? hidden;
        long batch = hidden.shape[0];

        // (B, T, C) -> (B, heads, T, C / heads): the usual non-contiguous view + transpose.
        Tensor SplitHeads(Tensor x) => x.view(batch, -1, _heads, x.shape[2] / _heads).transpose(1, 2);

        Tensor q = SplitHeads(to_q.forward(hidden));
        Tensor k = SplitHeads(to_k.forward(source));
        Tensor v = SplitHeads(to_v.forward(source));

        Tensor attended = ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask);

        Tensor merged = attended.transpose(1, 2).reshape(batch, -1, attended.shape[1] * attended.shape[3]);
        return to_out.forward(merged).MoveToOuterDisposeScope();
    }
}
