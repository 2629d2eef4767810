using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// The diagnostics of ChunkedAttention. IDs, severities and fix titles are part of the public
/// contract; every message says what is wrong and what the fix (or the user) does about it.
/// </summary>
internal static class DiagnosticDescriptors
{
    /// <summary>One category, so a whole set can be configured with <c>dotnet_analyzer_diagnostic.category-ChunkedAttention.severity</c>.</summary>
    public const string Category = "ChunkedAttention";

    /// <summary>
    /// Every help link is this base followed by <c>SDPA00N.md</c>: the repository URL the package was built
    /// with (MSBuild property <c>ChunkedAttentionRepositoryUrl</c>, eng/RepositoryUrl.props) and
    /// <c>/blob/main/docs/diagnostics/</c>. Empty, and so no help links, when the build knew no repository.
    /// </summary>
    public static string HelpLinkBase =>
        RepositoryInfo.Url.Length == 0 ? string.Empty : RepositoryInfo.Url.TrimEnd('/') + "/blob/main/docs/diagnostics/";

    /// <summary>The help link of diagnostic <paramref name="id"/>, or empty when there is no repository URL.</summary>
    public static string HelpLink(string id) => HelpLinkBase.Length == 0 ? string.Empty : HelpLinkBase + id + ".md";

    public const string DirectCallInProcessorId = "SDPA001";
    public const string NotPartialId = "SDPA002";
    public const string InvalidSettingId = "SDPA003";
    public const string CausalWithMaskId = "SDPA004";
    public const string DirectCallOutsideProcessorId = "SDPA005";
    public const string MemberNameClashId = "SDPA006";
    public const string HandWrittenInProcessorId = "SDPA007";
    public const string HandWrittenOutsideProcessorId = "SDPA008";
    public const string CannotGenerateId = "SDPA009";

    /// <summary>SDPA001: direct SDPA call inside an attention processor.</summary>
    public static readonly DiagnosticDescriptor DirectCallInProcessor = Create(
        DirectCallInProcessorId,
        title: "Direct scaled_dot_product_attention call in an attention processor",
        messageFormat: "Direct scaled_dot_product_attention call in {0} materializes the full attention matrix and can exhaust memory on MPS; {1}",
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "Native scaled_dot_product_attention holds batch*heads*queries*keys scores at once. On Apple Silicon (MPS) this is the largest allocation of a diffusion step and fails for large images. The generated ChunkedScaledDotProductAttention has the same parameters, chunks the query rows where the attribute's devices say so and calls the native function everywhere else.");

    /// <summary>SDPA002: a [ChunkedAttention] type or one of its containing types is not partial.</summary>
    public static readonly DiagnosticDescriptor NotPartial = Create(
        NotPartialId,
        title: "[ChunkedAttention] type and its containing types must be partial",
        messageFormat: "'{0}' must be partial because '{1}' is marked [ChunkedAttention] and the generator adds ChunkedScaledDotProductAttention to it; make '{0}' partial",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "The source generator adds a method to every type marked [ChunkedAttention] in a partial declaration, which needs the type and every type containing it to be declared partial. No code is generated for the type until they are.");

    /// <summary>SDPA003: an invalid [ChunkedAttention] setting.</summary>
    public static readonly DiagnosticDescriptor InvalidSetting = Create(
        InvalidSettingId,
        title: "Invalid [ChunkedAttention] setting",
        messageFormat: "[ChunkedAttention] on '{0}': {1}",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "ChunkSize must be at least 1, KeyChunkSize and MaxScoreElements must not be negative (0 means keys whole / no cap), and Devices must select at least one device. No code is generated for the type until the settings are valid.");

    /// <summary>SDPA004: is_casual true together with a mask, which TorchSharp rejects at run time.</summary>
    public static readonly DiagnosticDescriptor CausalWithMask = Create(
        CausalWithMaskId,
        title: "scaled_dot_product_attention called with both a causal flag and an attention mask",
        messageFormat: "This call passes is_casual: true and an attn_mask, which TorchSharp's scaled_dot_product_attention rejects with an ArgumentException at run time; {0}",
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "TorchSharp throws when is_casual is true and a mask is given. The chunked wrapper accepts both and applies the mask AND the causal band, as PyTorch's semantics describe. Reported only when is_casual is a compile-time true constant and attn_mask is not the null literal; it replaces SDPA001/SDPA005 on the same call, and has the same fix.");

    /// <summary>SDPA005: direct SDPA call outside attention processors (off by default).</summary>
    public static readonly DiagnosticDescriptor DirectCallOutsideProcessor = Create(
        DirectCallOutsideProcessorId,
        title: "Direct scaled_dot_product_attention call",
        messageFormat: "Direct scaled_dot_product_attention call in {0} materializes the full attention matrix and can exhaust memory on MPS; {1}",
        DiagnosticSeverity.Info,
        isEnabledByDefault: false,
        description: "The same finding as SDPA001 for code that does not look like an attention processor (not a TorchSharp module, not marked [ChunkedAttention], no 'Attention'/'Attn' in its names). Off by default; enable it in .editorconfig to audit every call site.");

    /// <summary>SDPA006: the type already declares a member with the generated method's name.</summary>
    public static readonly DiagnosticDescriptor MemberNameClash = Create(
        MemberNameClashId,
        title: "[ChunkedAttention] type already declares a member the generator adds",
        messageFormat: "'{0}' already declares a member named '{1}', which the generator adds to [ChunkedAttention] types, so no wrapper is generated; rename or remove that member",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "The generator adds a private static ChunkedScaledDotProductAttention method and a ChunkedScaledDotProductAttentionOptions field to every [ChunkedAttention] type. A member of either name declared by hand would clash with them, so the generator skips the type until the member is renamed or removed.");

    /// <summary>SDPA007: hand-written attention inside an attention processor, replaceable by one SDPA call.</summary>
    public static readonly DiagnosticDescriptor HandWrittenInProcessor = Create(
        HandWrittenInProcessorId,
        title: "Hand-written attention in an attention processor",
        messageFormat: "Hand-written attention in {0} ({1}) materializes the full attention matrix and can exhaust memory on MPS; use chunked attention: one ChunkedScaledDotProductAttention call gives the same results",
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "q·kᵀ, an optional scale and mask, a softmax over the last dim, an optional dropout and a product with the value compute scaled dot-product attention by hand, holding batch*heads*queries*keys scores at once on every device. Reported only where one ChunkedScaledDotProductAttention call (mask, dropout and scale passed through) gives the same results and nothing else reads the scores or weights; the fix replaces the chain with that call, marks the type [ChunkedAttention] and makes it partial.");

    /// <summary>SDPA008: the same outside attention processors (off by default).</summary>
    public static readonly DiagnosticDescriptor HandWrittenOutsideProcessor = Create(
        HandWrittenOutsideProcessorId,
        title: "Hand-written attention",
        messageFormat: "Hand-written attention in {0} ({1}) materializes the full attention matrix and can exhaust memory on MPS; use chunked attention: one ChunkedScaledDotProductAttention call gives the same results",
        DiagnosticSeverity.Info,
        isEnabledByDefault: false,
        description: "The same finding as SDPA007 for code that does not look like an attention processor (not a TorchSharp module, not marked [ChunkedAttention], no 'Attention'/'Attn' in its names). Off by default; enable it in .editorconfig to find every hand-written attention.");

    /// <summary>SDPA009: a [ChunkedAttention] type for which the generator cannot emit the wrapper.</summary>
    public static readonly DiagnosticDescriptor CannotGenerate = Create(
        CannotGenerateId,
        title: "No wrapper can be generated for this [ChunkedAttention] type",
        messageFormat: "No ChunkedScaledDotProductAttention is generated for '{0}': {1}",
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "The generator adds ChunkedScaledDotProductAttention in a partial declaration in a file of its own, mirroring the referenced TorchSharp's scaled_dot_product_attention. A file-local type (or a type nested in one) cannot be extended from another file, and a TorchSharp whose scaled_dot_product_attention the generator cannot restate (a ref, out or params parameter, a default without a C# literal, no such method) leaves nothing to mirror. Without this diagnostic the only symptom would be CS0103 at every call of the wrapper.");

    /// <summary>SDPA009's reason for a file-local type.</summary>
    public const string FileLocalReason = "it is file-local (or nested in a file-local type), and the generated partial declaration, in another file, cannot extend it; remove the 'file' modifier";

    /// <summary>SDPA009's reason when TorchSharp's SDPA cannot be restated ({0} says why).</summary>
    public const string SdpaNotRestatableReason = "{0}; update the ChunkedAttention package, or call ChunkedAttention.ChunkedSdpa.Attention directly";

    /// <summary>SDPA009's reason when TorchSharp is not referenced at all ({0} says so).</summary>
    public const string NoTorchSharpReason = "{0}; add the TorchSharp package (0.107 or later)";

    /// <summary>The remedy of SDPA001/SDPA005 where the code fix applies ({0} is the type).</summary>
    public const string UseChunkedAttentionRemedy = "use chunked attention: call ChunkedScaledDotProductAttention, mark '{0}' [ChunkedAttention] and make it partial";

    /// <summary>The remedy of SDPA004 where the code fix applies.</summary>
    public const string CausalWithMaskRemedy = "use chunked attention: ChunkedScaledDotProductAttention applies both the mask and the causal band";

    /// <summary>The remedy where no type can host the wrapper (top-level statements, interfaces).</summary>
    public const string MoveCallRemedy = "move the call into a class or struct marked [ChunkedAttention] and call ChunkedScaledDotProductAttention there";

    /// <summary>The remedy in a file-local type, which the generated file cannot extend.</summary>
    public const string FileLocalRemedy = "move the call into a class or struct that is not file-local, mark it [ChunkedAttention] and call ChunkedScaledDotProductAttention there (the generator cannot extend a file-local type)";

    /// <summary>The remedy in a type that declares a member named like one the generator adds ({0} the type, {1} the member).</summary>
    public const string MemberNameTakenRemedy = "rename or remove the member '{1}' of '{0}' (the generator adds a member of that name), then mark '{0}' [ChunkedAttention] and call ChunkedScaledDotProductAttention";

    /// <summary>The remedy in a project that does not reference the runtime ({0} is the type).</summary>
    public const string RuntimeNotReferencedRemedy = "reference the ChunkedAttention runtime (assembly ChunkedAttention.Runtime of the ChunkedAttention package; this project does not), then mark '{0}' [ChunkedAttention] and call ChunkedScaledDotProductAttention";

    /// <summary>The remedy where the generator cannot restate TorchSharp's SDPA ({0} says why).</summary>
    public const string SdpaNotRestatableRemedy = "call ChunkedAttention.ChunkedSdpa.Attention instead: no ChunkedScaledDotProductAttention can be generated because {0}; update the ChunkedAttention package";

    private static DiagnosticDescriptor Create(
        string id,
        string title,
        string messageFormat,
        DiagnosticSeverity severity,
        bool isEnabledByDefault,
        string description) =>
        new(id, title, messageFormat, Category, severity, isEnabledByDefault, description, HelpLink(id));
}
