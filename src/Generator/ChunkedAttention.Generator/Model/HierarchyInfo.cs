using System.Collections.Generic;
using System.Collections.Immutable;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ChunkedAttention.Generator.Model;

/// <summary>
/// Where a type sits: its namespace and the chain of types from the outermost container down to
/// the type itself, with what a partial re-declaration of each needs (keyword, name, type
/// parameters and their constraints). Value-equal and free of symbols, so it can flow through an
/// incremental pipeline.
/// </summary>
/// <param name="Namespace">The containing namespace without <c>global::</c>; empty for the global namespace.</param>
/// <param name="Types">The outermost containing type first, the type itself last.</param>
internal sealed record HierarchyInfo(string Namespace, EquatableArray<TypeDeclarationInfo> Types)
{
    private static readonly SymbolDisplayFormat NamespaceFormat =
        SymbolDisplayFormat.FullyQualifiedFormat.WithGlobalNamespaceStyle(SymbolDisplayGlobalNamespaceStyle.Omitted);

    /// <summary>The type itself (the last element of <see cref="Types"/>).</summary>
    public TypeDeclarationInfo Type => Types[Types.Count - 1];

    /// <summary>
    /// A name unique per type, fit for a hint name: the namespace with dots, then the types
    /// joined by <c>+</c> with their generic arity (<c>My.Ns.Outer+Inner`1</c>). The <c>+</c> keeps
    /// namespace <c>A.B</c> with type <c>C</c> apart from type <c>A</c> nesting <c>B.C</c>.
    /// </summary>
    public string MetadataName
    {
        get
        {
            var builder = new StringBuilder();
            if (Namespace.Length > 0)
            {
                builder.Append(Namespace.Replace("@", string.Empty)).Append('.');
            }

            for (int i = 0; i < Types.Count; i++)
            {
                if (i > 0)
                {
                    builder.Append('+');
                }

                builder.Append(Types[i].MetadataName);
            }

            return builder.ToString();
        }
    }

    /// <summary>Reads the hierarchy of <paramref name="type"/>.</summary>
    /// <param name="type">A named type (possibly nested, possibly generic).</param>
    public static HierarchyInfo From(INamedTypeSymbol type)
    {
        var types = new List<TypeDeclarationInfo>();
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            types.Add(TypeDeclarationInfo.From(current));
        }

        types.Reverse();
        string ns = type.ContainingNamespace is { IsGlobalNamespace: false } containing
            ? containing.ToDisplayString(NamespaceFormat)
            : string.Empty;
        return new HierarchyInfo(ns, types.ToEquatableArray());
    }

    /// <summary>
    /// Whether every declaration of <paramref name="type"/> and of each containing type carries
    /// <c>partial</c>, i.e. whether another file may add members to it. Types from metadata have no
    /// declarations here and are not extendable.
    /// </summary>
    /// <param name="type">The type.</param>
    /// <param name="cancellationToken">Cancels the syntax walk.</param>
    public static bool IsPartialWithContainers(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (current.DeclaringSyntaxReferences.IsEmpty)
            {
                return false;
            }

            foreach (SyntaxReference reference in current.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is not TypeDeclarationSyntax declaration
                    || !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
                {
                    return false;
                }
            }
        }

        return true;
    }
}

/// <summary>One type of a <see cref="HierarchyInfo"/>: what a partial re-declaration of it needs.</summary>
/// <param name="Keyword">
/// <c>class</c>, <c>struct</c>, <c>interface</c>, <c>record</c> or <c>record struct</c>. Other modifiers
/// (accessibility, <c>static</c>, <c>readonly</c>, <c>ref</c>, <c>sealed</c>) are left out: C# merges
/// them from the declarations that state them.
/// </param>
/// <param name="Name">The name as written in C# (keywords escaped with <c>@</c>).</param>
/// <param name="TypeParameters">The type's own type parameters (not its containers').</param>
internal sealed record TypeDeclarationInfo(string Keyword, string Name, EquatableArray<TypeParameterInfo> TypeParameters)
{
    /// <summary>The name without <c>@</c>, with <c>`arity</c> when generic.</summary>
    public string MetadataName =>
        TypeParameters.IsEmpty ? Name.TrimStart('@') : Name.TrimStart('@') + "`" + TypeParameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Reads one type (not its containers).</summary>
    /// <param name="type">The type.</param>
    public static TypeDeclarationInfo From(INamedTypeSymbol type)
    {
        string keyword = type.TypeKind switch
        {
            TypeKind.Struct => type.IsRecord ? "record struct" : "struct",
            TypeKind.Interface => "interface",
            _ => type.IsRecord ? "record" : "class",
        };

        ImmutableArray<ITypeParameterSymbol> parameters = type.TypeParameters;
        var infos = new TypeParameterInfo[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            infos[i] = TypeParameterInfo.From(parameters[i]);
        }

        return new TypeDeclarationInfo(keyword, Identifiers.Escape(type.Name), ImmutableArray.Create(infos).ToEquatableArray());
    }
}

/// <summary>
/// A type parameter of a <see cref="TypeDeclarationInfo"/>. No variance: only interfaces have it,
/// and a variant interface cannot contain classes or structs (CS8427).
/// </summary>
/// <param name="Name">The name as written in C# (keywords escaped).</param>
/// <param name="Constraints">
/// The constraints in the order C# requires (primary, types, <c>new()</c>), fully qualified with
/// <c>global::</c>; empty when unconstrained.
/// </param>
internal sealed record TypeParameterInfo(string Name, EquatableArray<string> Constraints)
{
    private static readonly SymbolDisplayFormat ConstraintFormat =
        SymbolDisplayFormat.FullyQualifiedFormat.AddMiscellaneousOptions(
            SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>Reads one type parameter.</summary>
    /// <param name="parameter">The type parameter.</param>
    public static TypeParameterInfo From(ITypeParameterSymbol parameter)
    {
        var constraints = new List<string>();

        // unmanaged implies the value-type flag too, so it is checked first.
        if (parameter.HasUnmanagedTypeConstraint)
        {
            constraints.Add("unmanaged");
        }
        else if (parameter.HasValueTypeConstraint)
        {
            constraints.Add("struct");
        }
        else if (parameter.HasReferenceTypeConstraint)
        {
            constraints.Add(parameter.ReferenceTypeConstraintNullableAnnotation == NullableAnnotation.Annotated ? "class?" : "class");
        }
        else if (parameter.HasNotNullConstraint)
        {
            constraints.Add("notnull");
        }

        foreach (ITypeSymbol constraintType in parameter.ConstraintTypes)
        {
            constraints.Add(constraintType.ToDisplayString(ConstraintFormat));
        }

        if (parameter.HasConstructorConstraint)
        {
            constraints.Add("new()");
        }

        return new TypeParameterInfo(Identifiers.Escape(parameter.Name), constraints.ToEquatableArray());
    }
}
