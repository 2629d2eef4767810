using System.Collections.Immutable;

namespace ChunkedAttention.Generator;

/// <summary>Names the generator, analyzers and code fixes agree on (one place, so they cannot drift).</summary>
internal static class WellKnownNames
{
    /// <summary>Metadata name of the marker attribute (runtime assembly).</summary>
    public const string ChunkedAttentionAttribute = "ChunkedAttention.ChunkedAttentionAttribute";

    /// <summary>Short name used when the code fix adds the attribute.</summary>
    public const string ChunkedAttentionAttributeShortName = "ChunkedAttention";

    /// <summary>Namespace of the runtime API.</summary>
    public const string RuntimeNamespace = "ChunkedAttention";

    /// <summary>Metadata name of TorchSharp's functional namespace-like class.</summary>
    public const string TorchFunctional = "TorchSharp.torch+nn+functional";

    /// <summary>Metadata name of TorchSharp's module base class.</summary>
    public const string TorchModule = "TorchSharp.torch+nn+Module";

    /// <summary>The TorchSharp method every diagnostic is about.</summary>
    public const string ScaledDotProductAttention = "scaled_dot_product_attention";

    /// <summary>The tool name in the <c>[GeneratedCode]</c> attribute of everything the generator emits.</summary>
    public const string GeneratorToolName = "ChunkedAttention.Generator";

    /// <summary>The method the generator adds to each marked type.</summary>
    public const string GeneratedMethodName = "ChunkedScaledDotProductAttention";

    /// <summary>Metadata name of TorchSharp's tensor type.</summary>
    public const string TorchTensor = "TorchSharp.torch+Tensor";

    /// <summary>
    /// The private static field the generator adds next to <see cref="GeneratedMethodName"/>, holding
    /// the attribute's settings as a <c>ChunkedAttentionOptions</c>. A type that already declares a
    /// member of this name gets no code either.
    /// </summary>
    public const string GeneratedOptionsFieldName = "ChunkedScaledDotProductAttentionOptions";

    /// <summary>Metadata name of the runtime's options type.</summary>
    public const string ChunkedAttentionOptions = "ChunkedAttention.ChunkedAttentionOptions";

    /// <summary>The members the generator adds; a type that declares either by hand gets no code (SDPA006).</summary>
    public static readonly ImmutableArray<string> GeneratedMemberNames = ImmutableArray.Create(GeneratedMethodName, GeneratedOptionsFieldName);
}
