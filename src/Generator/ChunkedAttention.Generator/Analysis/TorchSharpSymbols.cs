using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// The symbols the analyzers compare against, resolved once per compilation. Comparing symbols
/// (never names) is what makes aliases, <c>using static</c> and look-alike methods come out right.
/// </summary>
internal sealed class TorchSharpSymbols
{
    private TorchSharpSymbols(
        ImmutableArray<IMethodSymbol> scaledDotProductAttention,
        INamedTypeSymbol? module,
        INamedTypeSymbol? chunkedAttentionAttribute)
    {
        ScaledDotProductAttention = scaledDotProductAttention;
        Module = module;
        ChunkedAttentionAttribute = chunkedAttentionAttribute;
    }

    /// <summary>Every overload of <c>torch.nn.functional.scaled_dot_product_attention</c>.</summary>
    public ImmutableArray<IMethodSymbol> ScaledDotProductAttention { get; }

    /// <summary><c>torch.nn.Module</c>, the base of every TorchSharp module.</summary>
    public INamedTypeSymbol? Module { get; }

    /// <summary>The marker attribute, or null when the runtime assembly is not referenced.</summary>
    public INamedTypeSymbol? ChunkedAttentionAttribute { get; }

    /// <summary>Null when the compilation does not reference TorchSharp: then there is nothing to analyze.</summary>
    public static TorchSharpSymbols? TryCreate(Compilation compilation)
    {
        var functional = compilation.GetTypeByMetadataName(WellKnownNames.TorchFunctional);
        if (functional is null)
        {
            return null;
        }

        var methods = functional.GetMembers(WellKnownNames.ScaledDotProductAttention).OfType<IMethodSymbol>().ToImmutableArray();
        if (methods.IsEmpty)
        {
            return null;
        }

        return new TorchSharpSymbols(
            methods,
            compilation.GetTypeByMetadataName(WellKnownNames.TorchModule),
            compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionAttribute));
    }

    /// <summary>True when <paramref name="method"/> is TorchSharp's SDPA (any overload).</summary>
    public bool IsScaledDotProductAttention(IMethodSymbol method)
    {
        if (method.Name != WellKnownNames.ScaledDotProductAttention)
        {
            return false;
        }

        var definition = method.OriginalDefinition;
        foreach (var candidate in ScaledDotProductAttention)
        {
            if (SymbolEqualityComparer.Default.Equals(candidate, definition))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when <paramref name="type"/> itself carries [ChunkedAttention] (in any of its partial declarations).</summary>
    public bool HasChunkedAttentionAttribute(INamedTypeSymbol type)
    {
        if (ChunkedAttentionAttribute is null)
        {
            return false;
        }

        foreach (var attribute in type.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, ChunkedAttentionAttribute))
            {
                return true;
            }
        }

        return false;
    }
}
