using System.Collections.Immutable;
using System.Linq;
using ChunkedAttention.Generator.Rules;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Checks types marked [ChunkedAttention]: SDPA002 (type or a container not partial), SDPA003
/// (invalid settings by <see cref="SettingsSchema"/>'s rules, reported on the offending argument), SDPA006
/// (hand-written member named like one the generator adds), SDPA009 (a type the generator cannot extend, or a
/// TorchSharp SDPA it cannot restate, by <see cref="WrapperHostRules"/>). The generator skips such types; this
/// analyzer says why.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ChunkedAttentionAttributeAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.NotPartial,
        DiagnosticDescriptors.InvalidSetting,
        DiagnosticDescriptors.MemberNameClash,
        DiagnosticDescriptors.CannotGenerate);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(static start =>
        {
            var attribute = start.Compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionAttribute);
            if (attribute is null)
            {
                return; // runtime not referenced: nothing can be marked
            }

            var host = WrapperHostFacts.For(start.Compilation, start.CancellationToken);
            start.RegisterSymbolAction(context => AnalyzeType(context, attribute, host), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolAnalysisContext context, INamedTypeSymbol attributeType, WrapperHostFacts host)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        var attributes = type.GetAttributes().Where(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attributeType)).ToImmutableArray();

        // SDPA002 is reported by each type on its own declarations, so a container shared by two
        // marked types is reported once, on the container.
        var markedType = attributes.IsEmpty ? FindMarkedNestedType(type, attributeType) : type;
        if (markedType is not null)
        {
            ReportMissingPartial(context, type, markedType);
        }

        if (attributes.IsEmpty)
        {
            return;
        }

        foreach (var attribute in attributes)
        {
            ReportInvalidSettings(context, type, attribute);
        }

        ReportNameClash(context, type, host);
        ReportCannotGenerate(context, type, attributes[0], host);
    }

    private static INamedTypeSymbol? FindMarkedNestedType(INamedTypeSymbol container, INamedTypeSymbol attributeType)
    {
        foreach (var nested in container.GetTypeMembers())
        {
            if (nested.GetAttributes().Any(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attributeType)))
            {
                return nested;
            }

            if (FindMarkedNestedType(nested, attributeType) is { } deeper)
            {
                return deeper;
            }
        }

        return null;
    }

    private static void ReportMissingPartial(SymbolAnalysisContext context, INamedTypeSymbol type, INamedTypeSymbol markedType)
    {
        foreach (var reference in type.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(context.CancellationToken) is TypeDeclarationSyntax declaration
                && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.NotPartial,
                    declaration.Identifier.GetLocation(),
                    DiagnosticArguments.Stable(type.Name),
                    DiagnosticArguments.Stable(markedType.Name)));
            }
        }
    }

    private static void ReportInvalidSettings(SymbolAnalysisContext context, INamedTypeSymbol type, AttributeData attribute)
    {
        var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(context.CancellationToken) as AttributeSyntax;
        var fallback = syntax?.GetLocation() ?? type.Locations.FirstOrDefault() ?? Location.None;

        if (attribute.AttributeConstructor is { } constructor)
        {
            for (var i = 0; i < attribute.ConstructorArguments.Length && i < constructor.Parameters.Length; i++)
            {
                var parameter = constructor.Parameters[i].Name;
                Check(context, type, parameter, attribute.ConstructorArguments[i], FindPositionalArgument(syntax, i, parameter) ?? fallback);
            }
        }

        foreach (var named in attribute.NamedArguments)
        {
            Check(context, type, named.Key, named.Value, FindNamedArgument(syntax, named.Key) ?? fallback);
        }
    }

    // The same schema, and so the same rules, as the generator's parser and the runtime's options validation.
    private static void Check(SymbolAnalysisContext context, INamedTypeSymbol type, string name, TypedConstant value, Location location)
    {
        if (SettingsSchema.FindAttributeSetting(name) is not { } setting || !setting.TryRead(value, out var number))
        {
            return; // a setting this version does not know, or an argument the compiler already reports
        }

        if (setting.Problem(number) is { } problem)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.InvalidSetting, location, DiagnosticArguments.Stable(type.Name), DiagnosticArguments.Stable(problem)));
        }
    }

    private static Location? FindNamedArgument(AttributeSyntax? syntax, string name)
    {
        var argument = syntax?.ArgumentList?.Arguments.LastOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);
        return argument?.GetLocation();
    }

    private static Location? FindPositionalArgument(AttributeSyntax? syntax, int index, string parameterName)
    {
        if (syntax?.ArgumentList is null)
        {
            return null;
        }

        var positional = syntax.ArgumentList.Arguments.Where(a => a.NameEquals is null).ToList();
        var byName = positional.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == parameterName);
        if (byName is not null)
        {
            return byName.GetLocation();
        }

        return index < positional.Count && positional[index].NameColon is null ? positional[index].GetLocation() : null;
    }

    private static void ReportNameClash(SymbolAnalysisContext context, INamedTypeSymbol type, WrapperHostFacts host)
    {
        foreach (var (member, location) in host.HandWrittenGeneratedNameMembers(type, context.Options, context.CancellationToken))
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.MemberNameClash, location, DiagnosticArguments.Stable(type.Name), DiagnosticArguments.Stable(member.Name)));
        }
    }

    // What the generator skips beyond SDPA002/003/006: a type its file cannot extend, a TorchSharp SDPA it cannot restate.
    private static void ReportCannotGenerate(SymbolAnalysisContext context, INamedTypeSymbol type, AttributeData attribute, WrapperHostFacts host)
    {
        string? reason = null;
        if (WrapperHostRules.IsFileLocalOrNestedInOne(type))
        {
            reason = DiagnosticDescriptors.FileLocalReason;
        }
        else if (host.SdpaNotRestatable is { } whyNot)
        {
            reason = string.Format(
                System.Globalization.CultureInfo.InvariantCulture,
                host.TorchSharpReferenced ? DiagnosticDescriptors.SdpaNotRestatableReason : DiagnosticDescriptors.NoTorchSharpReason,
                whyNot);
        }

        if (reason is null)
        {
            return;
        }

        // On the name of the declaration that carries the attribute.
        var location = attribute.ApplicationSyntaxReference?.GetSyntax(context.CancellationToken)
            .FirstAncestorOrSelf<TypeDeclarationSyntax>()?.Identifier.GetLocation()
            ?? type.Locations.FirstOrDefault()
            ?? Location.None;
        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.CannotGenerate, location, DiagnosticArguments.Stable(type.Name), DiagnosticArguments.Stable(reason)));
    }
}
