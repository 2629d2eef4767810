using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using ChunkedAttention.Generator.Model;
using ChunkedAttention.Generator.Rules;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ChunkedAttention.Generator.Generation;

/// <summary>
/// Turns symbols into the generator's value-equal specs. Everything symbol-related happens here;
/// the emitter only sees <see cref="TargetSpec"/> and the <see cref="WrapperPlan"/> derived from
/// <see cref="CompilationFacts"/>. Settings are read through <see cref="SettingsSchema"/>, what can be
/// extended is decided by <see cref="WrapperHostRules"/>: the analyzers apply the same rules.
/// </summary>
internal static class Parser
{
    private static readonly SymbolDisplayFormat AnnotatedTypeFormat =
        SymbolDisplayFormat.FullyQualifiedFormat.AddMiscellaneousOptions(
            SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>
    /// Reads one <c>[ChunkedAttention]</c> target. Returns null for targets that must get no code:
    /// the type or a container not partial (SDPA002), invalid settings (SDPA003), a name clash (SDPA006), a
    /// file-local type or one nested in a file-local type (SDPA009), or an attribute that does not bind (the
    /// compiler's error). The generator never reports; the analyzers do.
    /// </summary>
    /// <param name="context">The attribute's target, from ForAttributeWithMetadataName.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static TargetSpec? ParseTarget(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol type
            || type.TypeKind is not (TypeKind.Class or TypeKind.Struct)
            || WrapperHostRules.IsFileLocalOrNestedInOne(type) // the generated file cannot extend it (SDPA009)
            || context.Attributes.Length != 1)
        {
            return null;
        }

        AttributeData attribute = context.Attributes[0];

        // Roslyn 4.8 hands over every declaration of a partial type that has an attribute named like ours in
        // its file, with the type's one bound attribute: keep only the declaration that carries it, or two
        // declarations would emit the same file (CS8785 and no output at all).
        SyntaxReference? application = attribute.ApplicationSyntaxReference;
        if (application is null
            || application.SyntaxTree != context.TargetNode.SyntaxTree
            || !context.TargetNode.Span.Contains(application.Span))
        {
            return null;
        }

        // While the user types, names can be missing (`partial class { }`, `A<T, >`, `namespace N. {`), or one
        // name can denote two types (`partial class A` beside `partial struct A`, CS0261): emitting either would
        // add errors of our own, or two files with one hint name (CS8785), to the user's list.
        if (!HasCompleteUniqueNames(type))
        {
            return null;
        }

        // The attribute on two partial declarations is already an error (CS0579); one file per type.
        int applications = 0;
        foreach (AttributeData candidate in type.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(candidate.AttributeClass, attribute.AttributeClass))
            {
                applications++;
            }
        }

        if (applications != 1)
        {
            return null;
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (!HierarchyInfo.IsPartialWithContainers(type, cancellationToken))
        {
            return null;
        }

        ChunkedAttentionSettings? settings = ParseSettings(attribute);
        if (settings is null || !settings.IsValid)
        {
            return null;
        }

        // The generator's own output is not part of this compilation: any member of these names is the user's (SDPA006).
        if (WellKnownNames.GeneratedMemberNames.Any(name => !type.GetMembers(name).IsEmpty))
        {
            return null;
        }

        Compilation compilation = context.SemanticModel.Compilation;
        return new TargetSpec(
            HierarchyInfo.From(type),
            settings,
            MethodHidesInheritedMember: HidesAccessibleBaseMember(type, compilation, WellKnownNames.GeneratedMethodName, methodsAreOverloads: true),
            FieldHidesInheritedMember: HidesAccessibleBaseMember(type, compilation, WellKnownNames.GeneratedOptionsFieldName, methodsAreOverloads: false));
    }

    /// <summary>
    /// True when the type, its containers, their type parameters and namespaces all have valid names, and no
    /// other type in the same container has the same name and arity.
    /// </summary>
    private static bool HasCompleteUniqueNames(INamedTypeSymbol type)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (!SyntaxFacts.IsValidIdentifier(current.Name))
            {
                return false;
            }

            ImmutableArray<INamedTypeSymbol> namesakes = current.ContainingType is { } outer
                ? outer.GetTypeMembers(current.Name, current.Arity)
                : current.ContainingNamespace.GetTypeMembers(current.Name, current.Arity);
            if (namesakes.Length > 1)
            {
                return false;
            }

            // `where T : ` half typed, or a constraint type that does not resolve.
            if (current.TypeParameters.Any(parameter => !SyntaxFacts.IsValidIdentifier(parameter.Name) || parameter.ConstraintTypes.Any(IsErroneous)))
            {
                return false;
            }
        }

        for (INamespaceSymbol? ns = type.ContainingNamespace; ns is not null && !ns.IsGlobalNamespace; ns = ns.ContainingNamespace)
        {
            if (!SyntaxFacts.IsValidIdentifier(ns.Name))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsErroneous(ITypeSymbol type) => type switch
    {
        { TypeKind: TypeKind.Error } => true,
        IArrayTypeSymbol array => IsErroneous(array.ElementType),
        IPointerTypeSymbol pointer => IsErroneous(pointer.PointedAtType),
        INamedTypeSymbol named => named.TypeArguments.Any(IsErroneous),
        _ => false,
    };

    /// <summary>
    /// Resolves the attribute's arguments to values through <see cref="SettingsSchema"/>. Constructor parameters
    /// map to the setting of the same name (<c>chunkSize</c> → <c>ChunkSize</c>); omitted settings keep the
    /// defaults; a setting this generator does not know (a newer runtime's) cannot be honoured and is ignored.
    /// Returns null when an argument does not bind (the compiler reports that).
    /// </summary>
    /// <param name="attribute">The attribute.</param>
    public static ChunkedAttentionSettings? ParseSettings(AttributeData attribute)
    {
        IMethodSymbol? constructor = attribute.AttributeConstructor;
        if (constructor is null || constructor.Parameters.Length != attribute.ConstructorArguments.Length)
        {
            return null;
        }

        ChunkedAttentionSettings settings = ChunkedAttentionSettings.Initial;
        for (int i = 0; i < constructor.Parameters.Length; i++)
        {
            if (!TryApply(ref settings, constructor.Parameters[i].Name, attribute.ConstructorArguments[i]))
            {
                return null;
            }
        }

        foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
        {
            if (!TryApply(ref settings, named.Key, named.Value))
            {
                return null;
            }
        }

        return settings;
    }

    private static bool TryApply(ref ChunkedAttentionSettings settings, string name, TypedConstant argument)
    {
        if (argument.Kind is TypedConstantKind.Error or TypedConstantKind.Array || argument.Value is null)
        {
            return false;
        }

        if (SettingsSchema.FindAttributeSetting(name) is not { } setting)
        {
            return true;
        }

        if (!setting.TryRead(argument, out long value))
        {
            return false;
        }

        settings = settings.With(setting, value);
        return true;
    }

    // A method hides base methods only of the same signature; the wrapper's (three tensors, mask,
    // dropout, causal, scale, gqa) is treated as never matching a user's method, so those overload.
    private static bool HidesAccessibleBaseMember(INamedTypeSymbol type, Compilation compilation, string name, bool methodsAreOverloads)
    {
        for (INamedTypeSymbol? baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            foreach (ISymbol member in baseType.GetMembers(name))
            {
                if (!(methodsAreOverloads && member.Kind == SymbolKind.Method)
                    && compilation.IsSymbolAccessibleWithin(member, type))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Reads what the generator needs from the compilation as a whole.</summary>
    /// <param name="compilation">The compilation.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static CompilationFacts ParseCompilationFacts(Compilation compilation, CancellationToken cancellationToken)
    {
        bool nullableReferenceTypes = HasNullableReferenceTypes(compilation);
        return new CompilationFacts(
            ParseSdpaSignature(compilation, nullableReferenceTypes, cancellationToken),
            ParseOptionsConstruction(compilation, cancellationToken),
            nullableReferenceTypes);
    }

    /// <summary>
    /// Whether the language version has nullable reference types (C# 8): below it, <c>#nullable</c> and
    /// <c>?</c> on a reference type do not compile (CS8370).
    /// </summary>
    /// <param name="compilation">The compilation.</param>
    public static bool HasNullableReferenceTypes(Compilation compilation) =>
        compilation is not CSharpCompilation { LanguageVersion: < LanguageVersion.CSharp8 };

    /// <summary>
    /// How to build the options: an object initializer from C# 9 on; below that (init-only setters
    /// need C# 9) the runtime's constructor taking every setting by name, when it has one. Without
    /// one, an older build reports CS8400 (C# 8) or CS8370 (C# 7.3) on the initializer, which names the fix.
    /// </summary>
    /// <param name="compilation">The compilation.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static OptionsConstruction ParseOptionsConstruction(Compilation compilation, CancellationToken cancellationToken)
    {
        if (compilation is not CSharpCompilation { LanguageVersion: < LanguageVersion.CSharp9 })
        {
            return OptionsConstruction.ObjectInitializer;
        }

        INamedTypeSymbol? options = compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionOptions);
        if (options is null)
        {
            return OptionsConstruction.ObjectInitializer;
        }

        foreach (IMethodSymbol constructor in options.InstanceConstructors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (constructor.DeclaredAccessibility != Accessibility.Public)
            {
                continue;
            }

            int matched = 0;
            bool othersOptional = true;
            foreach (IParameterSymbol parameter in constructor.Parameters)
            {
                if (OptionsMembers.ConstructorParameters.Contains(parameter.Name))
                {
                    matched++;
                }
                else if (!parameter.IsOptional)
                {
                    othersOptional = false;
                }
            }

            if (matched == OptionsMembers.ConstructorParameters.Length && othersOptional)
            {
                return OptionsConstruction.Constructor;
            }
        }

        return OptionsConstruction.ObjectInitializer;
    }

    /// <summary>
    /// Reads TorchSharp's <c>torch.nn.functional.scaled_dot_product_attention</c> from the
    /// compilation. Null when TorchSharp is not referenced, the method is missing, or its shape is
    /// one the wrapper cannot mirror (first three parameters not tensors, <c>ref</c>/<c>out</c>/
    /// <c>params</c> parameters).
    /// </summary>
    /// <param name="compilation">The compilation.</param>
    /// <param name="nullableReferenceTypes">Whether parameter types carry nullable annotations (C# 8 and later).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static SdpaSignature? ParseSdpaSignature(Compilation compilation, bool nullableReferenceTypes, CancellationToken cancellationToken) =>
        ParseSdpaSignature(compilation, nullableReferenceTypes, cancellationToken, out _);

    /// <summary>
    /// <see cref="ParseSdpaSignature(Compilation, bool, CancellationToken)"/>, saying why there is no signature:
    /// the one rule the generator follows and the analyzer reports (SDPA009, and no fix offered).
    /// </summary>
    /// <param name="compilation">The compilation.</param>
    /// <param name="nullableReferenceTypes">Whether parameter types carry nullable annotations (C# 8 and later).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <param name="whyNot">Null when a signature is returned; else why the wrapper cannot mirror TorchSharp's SDPA.</param>
    public static SdpaSignature? ParseSdpaSignature(
        Compilation compilation, bool nullableReferenceTypes, CancellationToken cancellationToken, out string? whyNot)
    {
        INamedTypeSymbol? functional = compilation.GetTypeByMetadataName(WellKnownNames.TorchFunctional);
        INamedTypeSymbol? tensor = compilation.GetTypeByMetadataName(WellKnownNames.TorchTensor);
        if (functional is null || tensor is null)
        {
            whyNot = "the project does not reference TorchSharp, whose scaled_dot_product_attention the wrapper mirrors";
            return null;
        }

        IMethodSymbol? method = null;
        foreach (ISymbol member in functional.GetMembers(WellKnownNames.ScaledDotProductAttention))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (member is IMethodSymbol candidate
                && candidate.IsStatic
                && candidate.DeclaredAccessibility == Accessibility.Public
                && !candidate.IsGenericMethod
                && SymbolEqualityComparer.Default.Equals(candidate.ReturnType, tensor)
                && candidate.Parameters.Length >= 3
                && IsTensor(candidate.Parameters[0], tensor)
                && IsTensor(candidate.Parameters[1], tensor)
                && IsTensor(candidate.Parameters[2], tensor)
                && IsBetterOverload(candidate, method))
            {
                method = candidate;
            }
        }

        if (method is null)
        {
            whyNot = "the referenced TorchSharp has no public static torch.nn.functional.scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, ...) returning a Tensor to mirror";
            return null;
        }

        var parameters = new SdpaParameter[method.Parameters.Length];
        var taken = new HashSet<SdpaParameterRole>();
        for (int i = 0; i < method.Parameters.Length; i++)
        {
            IParameterSymbol parameter = method.Parameters[i];
            if (parameter.RefKind != RefKind.None || parameter.IsParams)
            {
                whyNot = "parameter '" + parameter.Name + "' of TorchSharp's scaled_dot_product_attention is ref, out, in or params, which the wrapper cannot mirror";
                return null;
            }

            SdpaParameterRole role = i switch
            {
                0 => SdpaParameterRole.Query,
                1 => SdpaParameterRole.Key,
                2 => SdpaParameterRole.Value,
                _ => Classify(parameter, tensor),
            };

            // A role is mapped once; a second look-alike is forwarded to TorchSharp untouched.
            if (!taken.Add(role))
            {
                role = SdpaParameterRole.Unknown;
            }

            string? defaultValue = null;
            if (parameter.HasExplicitDefaultValue)
            {
                defaultValue = FormatDefault(parameter.Type, parameter.ExplicitDefaultValue);
                if (defaultValue is null)
                {
                    whyNot = "the default of parameter '" + parameter.Name + "' of TorchSharp's scaled_dot_product_attention has no C# literal the wrapper could restate";
                    return null;
                }
            }

            bool nullDefault = parameter.HasExplicitDefaultValue && parameter.ExplicitDefaultValue is null;
            string type = FormatParameterType(parameter.Type, nullDefault, nullableReferenceTypes);
            string name = Identifiers.Escape(parameter.Name);
            string? neutral = role == SdpaParameterRole.Unknown ? NeutralCheck(name, parameter.Type, defaultValue, nullDefault) : null;
            parameters[i] = new SdpaParameter(name, type, defaultValue, role, neutral);
        }

        whyNot = null;
        return new SdpaSignature(
            functional.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            method.Name,
            method.ReturnType.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            tensor.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            ImmutableArray.Create(parameters).ToEquatableArray());
    }

    private static bool IsTensor(IParameterSymbol parameter, INamedTypeSymbol tensor) =>
        SymbolEqualityComparer.Default.Equals(parameter.Type, tensor);

    // Several overloads (not the case in TorchSharp 0.107): mirror the richest one; ties break by
    // signature text so the choice never depends on metadata order.
    private static bool IsBetterOverload(IMethodSymbol candidate, IMethodSymbol? current)
    {
        if (current is null)
        {
            return true;
        }

        if (candidate.Parameters.Length != current.Parameters.Length)
        {
            return candidate.Parameters.Length > current.Parameters.Length;
        }

        return string.CompareOrdinal(candidate.ToDisplayString(), current.ToDisplayString()) < 0;
    }

    // The role by name (one list with the call analyzer), kept only when the type fits it too.
    private static SdpaParameterRole Classify(IParameterSymbol parameter, INamedTypeSymbol tensor)
    {
        ITypeSymbol type = parameter.Type;
        SdpaParameterRole role = SdpaParameterNames.RoleOf(parameter.Name);
        bool fits = role switch
        {
            SdpaParameterRole.Mask => SymbolEqualityComparer.Default.Equals(type, tensor),
            SdpaParameterRole.DropoutProbability => type.SpecialType == SpecialType.System_Double,
            SdpaParameterRole.Causal or SdpaParameterRole.EnableGqa => type.SpecialType == SpecialType.System_Boolean,
            SdpaParameterRole.Scale => IsNullableValueType(type) && WithoutNullable(type).SpecialType == SpecialType.System_Double,
            _ => false,
        };
        return fits ? role : SdpaParameterRole.Unknown;
    }

    // A reference type whose default is null is nullable whatever TorchSharp's annotations say
    // (TorchSharp 0.107 is nullable-oblivious), so the wrapper declares it with '?'. Below C# 8 no
    // reference type is annotated (nullable value types keep their '?').
    private static string FormatParameterType(ITypeSymbol type, bool nullDefault, bool nullableReferenceTypes)
    {
        if (!nullableReferenceTypes)
        {
            return type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
        }

        string text = type.ToDisplayString(AnnotatedTypeFormat);
        return nullDefault && type.IsReferenceType && !text.EndsWith("?", StringComparison.Ordinal) ? text + "?" : text;
    }

    /// <summary>A parameter default as C# source (enum values cast from their integer value); null if unspeakable.</summary>
    private static string? FormatDefault(ITypeSymbol type, object? value)
    {
        if (value is null)
        {
            // null for references and Nullable<T>; 'default' for any other struct.
            return type.IsValueType && !IsNullableValueType(type) ? "default" : "null";
        }

        ITypeSymbol underlying = WithoutNullable(type);
        string? literal = Literals.Format(value);
        if (literal is null)
        {
            return null;
        }

        return underlying.TypeKind == TypeKind.Enum
            ? "(" + underlying.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat) + ")(" + literal + ")"
            : literal;
    }

    private static bool IsNullableValueType(ITypeSymbol type) =>
        type.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T;

    // T for Nullable<T>, else the type itself.
    private static ITypeSymbol WithoutNullable(ITypeSymbol type) =>
        type is INamedTypeSymbol { TypeArguments.Length: 1 } named && IsNullableValueType(named) ? named.TypeArguments[0] : type;

    private static string? NeutralCheck(string name, ITypeSymbol type, string? defaultValue, bool nullDefault)
    {
        if (defaultValue is null)
        {
            return null;
        }

        if (nullDefault && defaultValue == "null")
        {
            return name + " is null";
        }

        ITypeSymbol underlying = WithoutNullable(type);
        bool comparable = underlying.TypeKind == TypeKind.Enum || underlying.SpecialType switch
        {
            SpecialType.System_Boolean or SpecialType.System_Char or SpecialType.System_String
                or SpecialType.System_SByte or SpecialType.System_Byte or SpecialType.System_Int16
                or SpecialType.System_UInt16 or SpecialType.System_Int32 or SpecialType.System_UInt32
                or SpecialType.System_Int64 or SpecialType.System_UInt64 or SpecialType.System_Single
                or SpecialType.System_Double or SpecialType.System_Decimal => true,
            _ => false,
        };
        return comparable ? name + " == " + defaultValue : null;
    }
}
