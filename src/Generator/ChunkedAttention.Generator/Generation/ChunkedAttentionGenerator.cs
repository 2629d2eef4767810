using System.Collections.Immutable;
using ChunkedAttention.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.Generator.Generation;

/// <summary>
/// Adds a device-guarded <c>ChunkedScaledDotProductAttention</c> to every type marked
/// <c>[ChunkedAttention]</c>.
/// </summary>
/// <remarks>
/// Pipeline: the compilation → <see cref="CompilationFacts"/> → one <see cref="WrapperPlan"/> per compilation
/// (TorchSharp's SDPA mapped onto the runtime's; null without one) ; attribute targets → <see cref="Parser"/> →
/// value-equal <see cref="TargetSpec"/> (null for targets that must get no code) → each paired with the plan →
/// <see cref="Emitter"/> → one file per type. Every model is value-equal and holds no symbols, syntax or
/// compilation, so edits elsewhere leave each step cached. The generator never reports diagnostics; the
/// analyzers do (SDPA002, SDPA003, SDPA006, SDPA009).
/// </remarks>
[Generator(LanguageNames.CSharp)]
public sealed class ChunkedAttentionGenerator : IIncrementalGenerator
{
    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // Re-read on every compilation change, but the facts compare equal, so nothing downstream reruns.
        IncrementalValueProvider<CompilationFacts> facts = context.CompilationProvider
            .Select(static (compilation, cancellationToken) => Parser.ParseCompilationFacts(compilation, cancellationToken))
            .WithTrackingName(TrackingNames.CompilationFacts);

        IncrementalValueProvider<WrapperPlan?> plan = facts
            .Select(static (facts, _) => WrapperPlan.Create(facts))
            .WithTrackingName(TrackingNames.WrapperPlan);

        IncrementalValuesProvider<TargetSpec> targets = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                WellKnownNames.ChunkedAttentionAttribute,
                static (node, _) => node is ClassDeclarationSyntax or StructDeclarationSyntax or RecordDeclarationSyntax,
                static (attributeContext, cancellationToken) => Parser.ParseTarget(attributeContext, cancellationToken))
            .WithTrackingName(TrackingNames.Targets)
            .SelectMany(static (target, _) => target is null ? ImmutableArray<TargetSpec>.Empty : ImmutableArray.Create(target))
            .WithTrackingName(TrackingNames.ValidTargets);

        IncrementalValuesProvider<GeneratedSource> sources = targets
            .Combine(plan)
            .WithTrackingName(TrackingNames.TargetsWithWrapperPlan)
            .SelectMany(static (pair, _) => pair.Right is null
                ? ImmutableArray<GeneratedSource>.Empty // no TorchSharp SDPA to mirror: no code (SDPA009)
                : ImmutableArray.Create(Emitter.Emit(pair.Left, pair.Right)))
            .WithTrackingName(TrackingNames.GeneratedSources);

        context.RegisterSourceOutput(sources, static (productionContext, source) =>
            productionContext.AddSource(source.HintName, SourceText.From(source.Text, System.Text.Encoding.UTF8)));
    }
}
