using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using ChunkedAttention.Generator.Generation;
using ChunkedAttention.Generator.Rules;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// What <see cref="WrapperHostRules"/> needs from one compilation, resolved once at compilation start and shared
/// by the analyzers: whether the runtime is referenced, whether (and why not) the generator can restate
/// TorchSharp's SDPA, and how to tell the generator's own members from hand-written ones.
/// </summary>
internal sealed class WrapperHostFacts
{
    private WrapperHostFacts(INamedTypeSymbol? attribute, GeneratedCodeAttributeCheck generatedCode, bool torchSharpReferenced, string? sdpaNotRestatable)
    {
        TorchSharpReferenced = torchSharpReferenced;
        Attribute = attribute;
        GeneratedCode = generatedCode;
        SdpaNotRestatable = sdpaNotRestatable;
    }

    /// <summary>The runtime's <c>[ChunkedAttention]</c>; null when the runtime is not referenced.</summary>
    public INamedTypeSymbol? Attribute { get; }

    /// <summary>Whether TorchSharp's <c>torch.nn.functional</c> is there at all.</summary>
    public bool TorchSharpReferenced { get; }

    /// <summary>How this compilation binds <c>[GeneratedCode]</c>.</summary>
    public GeneratedCodeAttributeCheck GeneratedCode { get; }

    /// <summary>Null when the generator can restate TorchSharp's SDPA; else why it cannot (the parser's words).</summary>
    public string? SdpaNotRestatable { get; }

    /// <summary>Reads the facts of <paramref name="compilation"/>.</summary>
    /// <param name="compilation">The compilation.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static WrapperHostFacts For(Compilation compilation, CancellationToken cancellationToken)
    {
        // The same reading the generator does: where it finds no signature, it emits nothing.
        Parser.ParseSdpaSignature(compilation, Parser.HasNullableReferenceTypes(compilation), cancellationToken, out string? whyNot);
        return new WrapperHostFacts(
            compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionAttribute),
            GeneratedCodeAttributeCheck.For(compilation),
            compilation.GetTypeByMetadataName(WellKnownNames.TorchFunctional) is not null,
            whyNot);
    }

    /// <summary>
    /// The type that would receive the wrapper for code in <paramref name="containingSymbol"/>: its nearest containing
    /// type, or null in top-level statements (their synthesized <c>Program</c> cannot be marked).
    /// </summary>
    /// <param name="containingSymbol">The member (or lambda, local function) the code is in.</param>
    public static INamedTypeSymbol? HostCandidate(ISymbol? containingSymbol)
    {
        for (ISymbol? current = containingSymbol; current is not null; current = current.ContainingSymbol)
        {
            switch (current)
            {
                case IMethodSymbol { Name: WellKnownMemberNames.TopLevelStatementsEntryPointMethodName }:
                    return null;
                case INamedTypeSymbol type:
                    return type;
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="type"/> can receive the wrapper, or why not.</summary>
    /// <param name="type">The type a call is in; null for top-level statements.</param>
    /// <param name="options">The analyzer options (which files count as generated).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public WrapperHost Decide(INamedTypeSymbol? type, AnalyzerOptions options, CancellationToken cancellationToken) =>
        WrapperHostRules.Decide(
            type,
            runtimeReferenced: Attribute is not null,
            sdpaRestatable: SdpaNotRestatable is null,
            declaresGeneratedMemberName: t => HandWrittenGeneratedNameMembers(t, options, cancellationToken).Any());

    /// <summary>
    /// The members of <paramref name="type"/> named like one the generator adds that the user wrote (SDPA006),
    /// each with its hand-written location. The generator's own members carry <c>[GeneratedCode]</c> from it or
    /// live in a generated file; either mark is enough.
    /// </summary>
    /// <param name="type">The type.</param>
    /// <param name="options">The analyzer options (which files count as generated).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public IEnumerable<(ISymbol Member, Location Location)> HandWrittenGeneratedNameMembers(
        INamedTypeSymbol type, AnalyzerOptions options, CancellationToken cancellationToken)
    {
        foreach (ISymbol member in WellKnownNames.GeneratedMemberNames.SelectMany(name => type.GetMembers(name)))
        {
            if (member.IsImplicitlyDeclared || GeneratedCode.IsOn(member, WellKnownNames.GeneratorToolName))
            {
                continue;
            }

            Location? location = member.Locations.FirstOrDefault(l =>
                l.IsInSource && !GeneratedFileDetection.IsGeneratedFile(l.SourceTree!, options, cancellationToken));
            if (location is not null)
            {
                yield return (member, location);
            }
        }
    }
}
