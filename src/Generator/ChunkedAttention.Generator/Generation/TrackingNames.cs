using System.Collections.Immutable;

namespace ChunkedAttention.Generator.Generation;

/// <summary>
/// The tracking names of the generator's pipeline steps, so tests can assert what the incremental
/// driver cached (see <c>GeneratorDriverOptions.TrackIncrementalGeneratorSteps</c>).
/// </summary>
internal static class TrackingNames
{
    /// <summary>
    /// The <see cref="Model.CompilationFacts"/>: TorchSharp's SDPA signature and how the runtime's options are
    /// constructed, read from the compilation on every change.
    /// </summary>
    public const string CompilationFacts = nameof(CompilationFacts);

    /// <summary>The compilation's <see cref="Model.WrapperPlan"/>, derived from the facts (null without a TorchSharp SDPA).</summary>
    public const string WrapperPlan = nameof(WrapperPlan);

    /// <summary>One parsed target per <c>[ChunkedAttention]</c> declaration (null for targets that get no code).</summary>
    public const string Targets = nameof(Targets);

    /// <summary>The targets that get code (the nulls filtered out).</summary>
    public const string ValidTargets = nameof(ValidTargets);

    /// <summary>Each valid target paired with the wrapper plan.</summary>
    public const string TargetsWithWrapperPlan = nameof(TargetsWithWrapperPlan);

    /// <summary>The emitted file of each target (none when the compilation has no TorchSharp SDPA).</summary>
    public const string GeneratedSources = nameof(GeneratedSources);

    /// <summary>Every tracked step, in pipeline order.</summary>
    public static readonly ImmutableArray<string> All = ImmutableArray.Create(
        CompilationFacts, WrapperPlan, Targets, ValidTargets, TargetsWithWrapperPlan, GeneratedSources);
}
