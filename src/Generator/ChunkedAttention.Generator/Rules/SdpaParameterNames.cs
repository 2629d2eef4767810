using System.Collections.Immutable;
using ChunkedAttention.Generator.Model;

namespace ChunkedAttention.Generator.Rules;

/// <summary>
/// The names TorchSharp's <c>scaled_dot_product_attention</c> gives (or PyTorch gives, for a later TorchSharp
/// that follows it) to the parameters the chunked runtime understands. One list for the parser, which maps
/// them onto the runtime's parameters, and the call analyzer, which reads the arguments of direct calls.
/// </summary>
internal static class SdpaParameterNames
{
    /// <summary>The mask (<c>attn_mask</c>).</summary>
    public static readonly ImmutableArray<string> Mask = ImmutableArray.Create("attn_mask");

    /// <summary>The dropout probability: TorchSharp 0.107's <c>p</c>, PyTorch's <c>dropout_p</c>.</summary>
    public static readonly ImmutableArray<string> DropoutProbability = ImmutableArray.Create("p", "dropout_p");

    /// <summary>The causal flag: TorchSharp 0.107 spells it <c>is_casual</c>; PyTorch (and maybe a later TorchSharp) <c>is_causal</c>.</summary>
    public static readonly ImmutableArray<string> Causal = ImmutableArray.Create("is_casual", "is_causal");

    /// <summary>PyTorch's <c>scale</c> (not in TorchSharp 0.107).</summary>
    public const string Scale = "scale";

    /// <summary>PyTorch's <c>enable_gqa</c> (not in TorchSharp 0.107).</summary>
    public const string EnableGqa = "enable_gqa";

    /// <summary>
    /// The role a parameter named <paramref name="name"/> has by name alone (the parser also checks its type);
    /// <see cref="SdpaParameterRole.Unknown"/> for any other name.
    /// </summary>
    /// <param name="name">The parameter name as declared (no <c>@</c>).</param>
    public static SdpaParameterRole RoleOf(string name)
    {
        if (Mask.Contains(name))
        {
            return SdpaParameterRole.Mask;
        }

        if (DropoutProbability.Contains(name))
        {
            return SdpaParameterRole.DropoutProbability;
        }

        if (Causal.Contains(name))
        {
            return SdpaParameterRole.Causal;
        }

        return name switch
        {
            Scale => SdpaParameterRole.Scale,
            EnableGqa => SdpaParameterRole.EnableGqa,
            _ => SdpaParameterRole.Unknown,
        };
    }
}
