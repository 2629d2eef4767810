namespace ChunkedAttention.Generator.Model;

/// <summary>
/// TorchSharp's <c>scaled_dot_product_attention</c> as the referenced TorchSharp declares it: the
/// wrapper mirrors these parameters so a call site only changes the method name.
/// </summary>
/// <param name="ContainingType">The declaring type, fully qualified (<c>global::TorchSharp.torch.nn.functional</c>).</param>
/// <param name="MethodName">The method name.</param>
/// <param name="ReturnType">The return type, fully qualified.</param>
/// <param name="TensorType">TorchSharp's tensor type, fully qualified.</param>
/// <param name="Parameters">Every parameter in declaration order (query, key, value first).</param>
internal sealed record SdpaSignature(
    string ContainingType, string MethodName, string ReturnType, string TensorType, EquatableArray<SdpaParameter> Parameters);

/// <summary>One parameter of TorchSharp's SDPA and what the wrapper does with it.</summary>
/// <param name="Name">The name as written in C# (keywords escaped).</param>
/// <param name="Type">The type, fully qualified, with <c>?</c> where it may be null.</param>
/// <param name="DefaultValue">The default as a C# expression; null when the parameter is required.</param>
/// <param name="Role">What the parameter means to the chunked runtime.</param>
/// <param name="NeutralCheck">
/// For <see cref="SdpaParameterRole.Unknown"/> parameters: a C# condition that holds when the
/// argument equals its default (so the call means what it would without the parameter); null when
/// that cannot be stated (no default, or a default not comparable with <c>==</c>).
/// </param>
internal sealed record SdpaParameter(string Name, string Type, string? DefaultValue, SdpaParameterRole Role, string? NeutralCheck);

/// <summary>The meaning of an SDPA parameter, matched by name and type.</summary>
internal enum SdpaParameterRole
{
    /// <summary>The first tensor.</summary>
    Query,

    /// <summary>The second tensor.</summary>
    Key,

    /// <summary>The third tensor.</summary>
    Value,

    /// <summary>A tensor whose name contains <c>mask</c> (today <c>attn_mask</c>).</summary>
    Mask,

    /// <summary>A <c>double</c> named <c>p</c> or containing <c>dropout</c> (today <c>p</c>).</summary>
    DropoutProbability,

    /// <summary>A <c>bool</c> named <c>is_causal</c>, <c>causal</c> or TorchSharp's <c>is_casual</c>.</summary>
    Causal,

    /// <summary>A <c>double?</c> named <c>scale</c> (not in TorchSharp 0.107).</summary>
    Scale,

    /// <summary>A <c>bool</c> named <c>enable_gqa</c> (not in TorchSharp 0.107).</summary>
    EnableGqa,

    /// <summary>Anything else: mirrored and forwarded to TorchSharp, never to the chunked kernels.</summary>
    Unknown,
}
