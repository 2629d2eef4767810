using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// <c>[GeneratedCode]</c> as one compilation binds it: how the analyzers tell the members the
/// generator emits from the user's own, also where a build does not treat the generated file as
/// generated (e.g. emitted to disk and compiled as a normal file).
/// </summary>
internal sealed class GeneratedCodeAttributeCheck
{
    private const string GeneratedCodeAttribute = "System.CodeDom.Compiler.GeneratedCodeAttribute";

    private readonly INamedTypeSymbol? _attribute;

    private GeneratedCodeAttributeCheck(INamedTypeSymbol? attribute) => _attribute = attribute;

    /// <summary>Resolves the attribute in <paramref name="compilation"/> (absent from some frameworks: then nothing is marked).</summary>
    /// <param name="compilation">The compilation.</param>
    public static GeneratedCodeAttributeCheck For(Compilation compilation) =>
        new(compilation.GetTypeByMetadataName(GeneratedCodeAttribute));

    /// <summary>True when <paramref name="symbol"/> carries <c>[GeneratedCode]</c>, written by <paramref name="tool"/> when one is given.</summary>
    /// <param name="symbol">A member.</param>
    /// <param name="tool">The tool name the attribute's first argument must equal; null for any tool.</param>
    public bool IsOn(ISymbol symbol, string? tool = null)
    {
        if (_attribute is null)
        {
            return false;
        }

        foreach (AttributeData attribute in symbol.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, _attribute)
                && (tool is null
                    || (attribute.ConstructorArguments.Length > 0 && attribute.ConstructorArguments[0].Value is string written && written == tool)))
            {
                return true;
            }
        }

        return false;
    }
}
