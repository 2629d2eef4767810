using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Rules;

/// <summary>Whether a type can receive the generated wrapper, or why not.</summary>
internal enum WrapperHost
{
    /// <summary>Marking the type <c>[ChunkedAttention]</c> and making it (and its containers) partial gives it the wrapper.</summary>
    Possible,

    /// <summary>No type at all: top-level statements.</summary>
    NoType,

    /// <summary>An interface (or another kind the attribute cannot mark).</summary>
    NotClassOrStruct,

    /// <summary>The type or a containing type is <c>file</c>-local: the generated file, another file, cannot extend it.</summary>
    FileLocal,

    /// <summary>The type declares a member named like one the generator adds (SDPA006 once marked).</summary>
    MemberNameTaken,

    /// <summary>The project does not reference the ChunkedAttention runtime, which the attribute and the wrapper need.</summary>
    RuntimeNotReferenced,

    /// <summary>The generator cannot restate the referenced TorchSharp's SDPA, so no wrapper is generated anywhere.</summary>
    SdpaNotRestatable,
}

/// <summary>
/// The one rulebook of where the wrapper can be generated: the generator skips what it cannot extend, the
/// attribute analyzer reports it (SDPA009), and the call analyzer decides from it whether its diagnostic offers
/// the code fix (then passes that decision to the fixer, which does not decide again).
/// </summary>
internal static class WrapperHostRules
{
    /// <summary>True when <paramref name="type"/> or a type containing it is file-local.</summary>
    /// <param name="type">The type.</param>
    public static bool IsFileLocalOrNestedInOne(INamedTypeSymbol type)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (current.IsFileLocal)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether <paramref name="type"/> can receive the wrapper, given what holds for the whole compilation. The
    /// checks run cheapest and most fundamental first, so the reason given is the one to act on first.
    /// </summary>
    /// <param name="type">The type a call is in; null for top-level statements.</param>
    /// <param name="runtimeReferenced">Whether the ChunkedAttention runtime is referenced.</param>
    /// <param name="sdpaRestatable">Whether the generator can restate the referenced TorchSharp's SDPA.</param>
    /// <param name="declaresGeneratedMemberName">Whether the type declares, by hand, a member named like one the generator adds.</param>
    public static WrapperHost Decide(INamedTypeSymbol? type, bool runtimeReferenced, bool sdpaRestatable, System.Func<INamedTypeSymbol, bool> declaresGeneratedMemberName)
    {
        if (type is null)
        {
            return WrapperHost.NoType;
        }

        if (type.TypeKind is not (TypeKind.Class or TypeKind.Struct))
        {
            return WrapperHost.NotClassOrStruct;
        }

        if (!runtimeReferenced)
        {
            return WrapperHost.RuntimeNotReferenced;
        }

        if (!sdpaRestatable)
        {
            return WrapperHost.SdpaNotRestatable;
        }

        if (IsFileLocalOrNestedInOne(type))
        {
            return WrapperHost.FileLocal;
        }

        return declaresGeneratedMemberName(type) ? WrapperHost.MemberNameTaken : WrapperHost.Possible;
    }
}
