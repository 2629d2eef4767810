using System;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// What counts as an attention processor (README, "Diagnostics"; docs/diagnostics/SDPA001.md): a type marked
/// [ChunkedAttention], a type deriving at any depth from <c>torch.nn.Module</c>, or a type whose
/// own name, a base type's name or an interface's name contains "Attention" or "Attn".
/// </summary>
internal static class AttentionProcessorRules
{
    // Case-sensitive on purpose: C# type names are PascalCase, and a case-insensitive "attn"
    // would also match unrelated words.
    private static readonly string[] NameMarkers = { "Attention", "Attn" };

    public static bool IsAttentionProcessor(INamedTypeSymbol type, TorchSharpSymbols symbols)
    {
        if (HasMarkerName(type.Name) || symbols.HasChunkedAttentionAttribute(type))
        {
            return true;
        }

        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            if (baseType.SpecialType == SpecialType.System_Object)
            {
                break;
            }

            if (HasMarkerName(baseType.Name)
                || (symbols.Module is not null && SymbolEqualityComparer.Default.Equals(baseType.OriginalDefinition, symbols.Module)))
            {
                return true;
            }
        }

        foreach (var @interface in type.AllInterfaces)
        {
            if (HasMarkerName(@interface.Name))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasMarkerName(string name)
    {
        foreach (var marker in NameMarkers)
        {
            if (name.IndexOf(marker, StringComparison.Ordinal) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
