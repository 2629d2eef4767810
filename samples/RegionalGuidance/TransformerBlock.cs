using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RegionalGuidance;

/// <summary>
/// A Stable-Diffusion-style basic transformer block: self-attention over the latent tokens,
/// cross-attention to the prompt under regional-guidance masks, a GEGLU feed-forward, and the
/// residual a control layer (ControlNet/T2I-adapter style) adds to the hidden states.
/// </summary>
public sealed class TransformerBlock : nn.Module
{
    private readonly LayerNorm norm1;
    private readonly LayerNorm norm2;
    private readonly LayerNorm norm3;
    private readonly Attention attn1;
    private readonly Attention attn2;
    private readonly Linear ff_in;
    private readonly Linear ff_out;

    public TransformerBlock(int dim, int contextDim, int heads) : base(nameof(TransformerBlock))
    {
        norm1 = nn.LayerNorm(dim);
        norm2 = nn.LayerNorm(dim);
        norm3 = nn.LayerNorm(dim);
        attn1 = new Attention("attn1", dim, dim, heads);
        attn2 = new Attention("attn2", dim, contextDim, heads);
        ff_in = nn.Linear(dim, dim * 4 * 2);
        ff_out = nn.Linear(dim * 4, dim);
        RegisterComponents();
    }

    /// <param name="hidden">(B, L, C) latent tokens.</param>
    /// <param name="context">(B, 77, Cctx) prompt embeddings.</param>
    /// <param name="regionalMask">Boolean (B, 1, L, 77): which prompt tokens each latent position sees.</param>
    /// <param name="controlResidual">(B, L, C) residual from a control layer.</param>
    public Tensor Forward(Tensor hidden, Tensor context, Tensor regionalMask, Tensor controlResidual)
    {
        using var scope = NewDisposeScope();
        Tensor x = hidden + controlResidual;
        x = x + attn1.Forward(norm1.forward(x));
        x = x + attn2.Forward(norm2.forward(x), context, regionalMask);
        Tensor[] gate = ff_in.forward(norm3.forward(x)).chunk(2, dim: -1);
        x = x + ff_out.forward(gate[0] * nn.functional.gelu(gate[1]));
        return x.MoveToOuterDisposeScope();
    }
}
