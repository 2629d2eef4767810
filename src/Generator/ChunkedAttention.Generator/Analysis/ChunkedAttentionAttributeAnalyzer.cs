using System;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Checks types marked [ChunkedAttention]: SDPA002 (type or a container not partial), SDPA003
/// (invalid settings, reported on the offending argument), SDPA006 (hand-written member named
/// like one the generator adds). The generator skips such types; this analyzer says why.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ChunkedAttentionAttributeAnalyzer : DiagnosticAnalyzer
{
    private const string ChunkSize = "ChunkSize";
    private const string KeyChunkSize = "KeyChunkSize";
    private const string MaxScoreElements = "MaxScoreElements";
    private const string Devices = "Devices";

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.NotPartial,
        DiagnosticDescriptors.InvalidSetting,
        DiagnosticDescriptors.MemberNameClash);

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

            var generatedCode = GeneratedCodeMark.For(start.Compilation);
            start.RegisterSymbolAction(context => AnalyzeType(context, attribute, generatedCode), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolAnalysisContext context, INamedTypeSymbol attributeType, GeneratedCodeMark generatedCode)
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

        ReportNameClash(context, type, generatedCode);
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
                    type.Name,
                    markedType.Name));
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
                var setting = ToSettingName(parameter);
                Check(context, type, setting, attribute.ConstructorArguments[i], FindPositionalArgument(syntax, i, parameter) ?? fallback);
            }
        }

        foreach (var named in attribute.NamedArguments)
        {
            Check(context, type, named.Key, named.Value, FindNamedArgument(syntax, named.Key) ?? fallback);
        }
    }

    // The attribute's constructor parameters are the camelCase names of its properties.
    private static string ToSettingName(string parameterName) =>
        parameterName.Length == 0 ? parameterName : char.ToUpperInvariant(parameterName[0]) + parameterName.Substring(1);

    private static void Check(SymbolAnalysisContext context, INamedTypeSymbol type, string setting, TypedConstant value, Location location)
    {
        if (value.Kind is TypedConstantKind.Error or TypedConstantKind.Array || value.Value is null)
        {
            return; // the compiler already reports a malformed argument
        }

        long number;
        try
        {
            number = Convert.ToInt64(value.Value, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException)
        {
            return;
        }

        var problem = setting switch
        {
            ChunkSize when number < 0 => $"ChunkSize is {number}; it must be 0 (auto: the fewest equal chunks within the step budget) or positive (query rows per chunk); set 0 or a positive value such as 1024",
            KeyChunkSize when number < 0 => $"KeyChunkSize is {number}; it must be 0 (keys kept whole) or positive (keys per block); set 0 or a positive value",
            MaxScoreElements when number < 0 => $"MaxScoreElements is {number}; it must be 0 (no cap) or a positive number of score elements; set 0 or a positive value",
            Devices when number == 0 => "Devices is None, so chunking would never apply; select at least one of AttentionDevices.Cpu, Cuda or Mps",
            _ => null,
        };

        if (problem is not null)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidSetting, location, type.Name, problem));
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

    // The members the generator adds; the generator skips a type that already declares either name.
    private static readonly string[] GeneratedMemberNames = { WellKnownNames.GeneratedMethodName, WellKnownNames.GeneratedOptionsFieldName };

    private static void ReportNameClash(SymbolAnalysisContext context, INamedTypeSymbol type, GeneratedCodeMark generatedCode)
    {
        foreach (var member in GeneratedMemberNames.SelectMany(name => type.GetMembers(name)))
        {
            // The generator's own partial declares these members too, marked [GeneratedCode] by it
            // and in a generated tree: either mark is enough to know it is not the user's member.
            if (member.IsImplicitlyDeclared || generatedCode.IsOn(member, WellKnownNames.GeneratorToolName))
            {
                continue;
            }

            var location = member.Locations.FirstOrDefault(l =>
                l.IsInSource && !GeneratedCodeDetection.IsGenerated(l.SourceTree!, context.Options, context.CancellationToken));
            if (location is not null)
            {
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.MemberNameClash, location, type.Name, member.Name));
            }
        }
    }
}
