using static TorchSharp.torch;

namespace RegionalGuidance;

/// <summary>Inputs of the seed's failure case: a 64x64 latent, a 77-token prompt, regional masks, a control residual.</summary>
public sealed record Scenario(Tensor Latent, Tensor Prompt, Tensor RegionalMask, Tensor ControlResidual) : System.IDisposable
{
    public const int Side = 64;                 // 64x64 latent = 4096 query tokens
    public const int Tokens = Side * Side;
    public const int PromptTokens = 77;
    public const int Channels = 320;            // SD 1.x first stage
    public const int ContextChannels = 768;     // CLIP ViT-L text embeddings
    public const int Heads = 8;

    // Prompt layout: BOS + shared prompt, then one span per region, then padding (seen by everyone).
    private const int SharedEnd = 21;
    private const int RegionAEnd = 41;
    private const int RegionBEnd = 61;

    public static Scenario Create(int batch, Device device, int seed)
    {
        using var scope = NewDisposeScope();
        manual_seed(seed);
        Tensor latent = randn(batch, Tokens, Channels);
        Tensor prompt = randn(batch, PromptTokens, ContextChannels);
        Tensor control = randn(batch, Tokens, Channels) * 0.1f;

        // Region A is the left half of the image in even samples, the top half in odd ones.
        Tensor rows = arange(Side).view(Side, 1).expand(Side, Side).reshape(Tokens);
        Tensor cols = arange(Side).view(1, Side).expand(Side, Side).reshape(Tokens);
        Tensor token = arange(PromptTokens);
        Tensor shared = token.lt(SharedEnd).logical_or(token.ge(RegionBEnd));
        Tensor inA = token.ge(SharedEnd).logical_and(token.lt(RegionAEnd));
        Tensor inB = token.ge(RegionAEnd).logical_and(token.lt(RegionBEnd));

        var masks = new Tensor[batch];
        for (int b = 0; b < batch; b++)
        {
            Tensor pixelInA = (b % 2 == 0 ? cols : rows).lt(Side / 2).view(Tokens, 1);
            Tensor sees = shared.view(1, PromptTokens)
                .logical_or(pixelInA.logical_and(inA.view(1, PromptTokens)))
                .logical_or(pixelInA.logical_not().logical_and(inB.view(1, PromptTokens)));
            masks[b] = sees.unsqueeze(0);
        }
        Tensor regionalMask = stack(masks).to(device);          // (B, 1, 4096, 77), bool

        var result = new Scenario(latent.to(device), prompt.to(device), regionalMask, control.to(device));
        result.Latent.MoveToOuterDisposeScope();
        result.Prompt.MoveToOuterDisposeScope();
        result.RegionalMask.MoveToOuterDisposeScope();
        result.ControlResidual.MoveToOuterDisposeScope();
        return result;
    }

    public void Dispose()
    {
        Latent.Dispose();
        Prompt.Dispose();
        RegionalMask.Dispose();
        ControlResidual.Dispose();
    }
}
