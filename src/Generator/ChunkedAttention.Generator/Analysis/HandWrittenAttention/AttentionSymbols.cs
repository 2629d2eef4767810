using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// The TorchSharp types whose methods make up hand-written attention, resolved once per compilation.
/// A method counts only when it is declared by one of these types (compared as symbols), so a
/// look-alike <c>matmul</c> or <c>softmax</c> on any other type never matches.
/// </summary>
internal sealed class AttentionSymbols
{
    private AttentionSymbols(
        INamedTypeSymbol tensor,
        INamedTypeSymbol torch,
        INamedTypeSymbol functional,
        INamedTypeSymbol? special,
        INamedTypeSymbol? dropout,
        INamedTypeSymbol? module,
        INamedTypeSymbol? scalarType,
        INamedTypeSymbol? finfo)
    {
        Tensor = tensor;
        Torch = torch;
        Functional = functional;
        Special = special;
        Dropout = dropout;
        Module = module;
        ScalarType = scalarType;
        FInfo = finfo;
    }

    /// <summary><c>torch.Tensor</c>.</summary>
    public INamedTypeSymbol Tensor { get; }

    /// <summary>The static class <c>torch</c> (<c>torch.matmul</c>, <c>torch.softmax</c>, <c>torch.float32</c>...).</summary>
    public INamedTypeSymbol Torch { get; }

    /// <summary><c>torch.nn.functional</c>.</summary>
    public INamedTypeSymbol Functional { get; }

    /// <summary><c>torch.special</c> (its <c>softmax</c>).</summary>
    public INamedTypeSymbol? Special { get; }

    /// <summary><c>TorchSharp.Modules.Dropout</c>, the module <c>nn.Dropout(p)</c> returns.</summary>
    public INamedTypeSymbol? Dropout { get; }

    /// <summary><c>torch.nn.Module</c>.</summary>
    public INamedTypeSymbol? Module { get; }

    /// <summary><c>torch.ScalarType</c>.</summary>
    public INamedTypeSymbol? ScalarType { get; }

    /// <summary><c>torch.FInfo</c>, what <c>torch.finfo(dtype)</c> returns.</summary>
    public INamedTypeSymbol? FInfo { get; }

    /// <summary>Null when the compilation does not reference TorchSharp.</summary>
    public static AttentionSymbols? TryCreate(Compilation compilation)
    {
        var tensor = compilation.GetTypeByMetadataName(WellKnownNames.TorchTensor);
        var torch = compilation.GetTypeByMetadataName("TorchSharp.torch");
        var functional = compilation.GetTypeByMetadataName(WellKnownNames.TorchFunctional);
        if (tensor is null || torch is null || functional is null)
        {
            return null;
        }

        return new AttentionSymbols(
            tensor,
            torch,
            functional,
            compilation.GetTypeByMetadataName("TorchSharp.torch+special"),
            compilation.GetTypeByMetadataName("TorchSharp.Modules.Dropout"),
            compilation.GetTypeByMetadataName(WellKnownNames.TorchModule),
            compilation.GetTypeByMetadataName("TorchSharp.torch+ScalarType"),
            compilation.GetTypeByMetadataName("TorchSharp.torch+FInfo"));
    }

    /// <summary>True for <paramref name="type"/> being TorchSharp's tensor type.</summary>
    public bool IsTensor(ITypeSymbol? type) => type is not null && SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, Tensor);

    /// <summary>True when <paramref name="method"/> is the tensor instance method <paramref name="name"/>.</summary>
    public bool IsTensorMethod(IMethodSymbol method, string name) =>
        method.Name == name && !method.IsStatic && SymbolEqualityComparer.Default.Equals(method.ContainingType, Tensor);

    /// <summary>True when <paramref name="method"/> is <c>torch.<paramref name="name"/></c>.</summary>
    public bool IsTorchFunction(IMethodSymbol method, string name) =>
        method.Name == name && method.IsStatic && SymbolEqualityComparer.Default.Equals(method.ContainingType, Torch);

    /// <summary>True when <paramref name="method"/> is <c>torch.nn.functional.<paramref name="name"/></c>.</summary>
    public bool IsFunctional(IMethodSymbol method, string name) =>
        method.Name == name && method.IsStatic && SymbolEqualityComparer.Default.Equals(method.ContainingType, Functional);

    /// <summary>True when <paramref name="method"/> is <c>torch.special.<paramref name="name"/></c>.</summary>
    public bool IsSpecial(IMethodSymbol method, string name) =>
        Special is not null && method.Name == name && method.IsStatic && SymbolEqualityComparer.Default.Equals(method.ContainingType, Special);

    /// <summary>True when <paramref name="method"/> is a tensor operator (<c>op_Multiply</c>...) declared by TorchSharp.</summary>
    public bool IsTensorOperator(IMethodSymbol? method, string name) =>
        method is not null && method.Name == name && SymbolEqualityComparer.Default.Equals(method.ContainingType, Tensor);

    /// <summary>True when <paramref name="symbol"/> is declared in TorchSharp's assembly.</summary>
    public bool IsFromTorchSharp(ISymbol symbol) =>
        SymbolEqualityComparer.Default.Equals(symbol.ContainingAssembly, Tensor.ContainingAssembly);

    /// <summary>True when <paramref name="type"/> is, or derives from, TorchSharp's <c>nn.Module</c>.</summary>
    public bool IsModule(ITypeSymbol? type)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            if (Module is not null && SymbolEqualityComparer.Default.Equals(current.OriginalDefinition, Module))
            {
                return true;
            }
        }

        return false;
    }
}
