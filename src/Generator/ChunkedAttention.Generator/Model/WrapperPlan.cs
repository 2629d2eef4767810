using System.Collections.Generic;
using System.Linq;

namespace ChunkedAttention.Generator.Model;

/// <summary>
/// How every wrapper of a compilation maps TorchSharp's SDPA parameters onto the runtime's: the wrapper's own
/// parameter list (TorchSharp's, then <c>scale</c> and <c>enable_gqa</c> unless TorchSharp has them), the
/// argument each runtime parameter receives, and the direct TorchSharp call. It depends only on the
/// compilation's <see cref="SdpaSignature"/>, so the pipeline computes it once per compilation.
/// </summary>
/// <remarks>
/// Mapping rules, so a newer TorchSharp keeps working: the first three tensors are query, key and value by
/// position; the others are matched by name (<c>SdpaParameterNames</c>) and type (<see cref="SdpaParameterRole"/>).
/// A role TorchSharp lacks gets the runtime's neutral value. A parameter that matches no role is mirrored and
/// forwarded to TorchSharp only: when its argument differs from its default the call stays native, because the
/// chunked kernels cannot honour semantics they do not know; when it has no default comparable with <c>==</c>,
/// the wrapper never chunks. Such a native-only call that also asks for what only the runtime provides
/// (<c>ChunkedSdpa.IsNativeCall</c> is false) throws <see cref="System.NotSupportedException"/> rather than
/// silently dropping either.
/// </remarks>
/// <param name="ReturnType">The wrapper's return type (TorchSharp's), fully qualified.</param>
/// <param name="Parameters">The wrapper's parameters in order.</param>
/// <param name="Arguments">The runtime's arguments, in the runtime's parameter order.</param>
/// <param name="NativeCall">TorchSharp's SDPA called with every wrapper parameter it has.</param>
/// <param name="UnknownParameters">The parameters forwarded to TorchSharp only, for the NotSupportedException message.</param>
/// <param name="UnknownNeutralChecks">Conditions that all hold when those parameters have their defaults.</param>
/// <param name="UnknownArgumentsCanBeNeutral">False when an unknown parameter can never be shown to hold its default.</param>
/// <param name="RuntimeOnlyFeatures">
/// What <c>ChunkedSdpa.IsNativeCall</c> rules out (<c>scale</c>, <c>enable_gqa</c>, causal with a mask), named as the
/// wrapper's parameters, for that message.
/// </param>
/// <param name="OptionsConstruction">How the options are built (depends on the language version).</param>
/// <param name="NullableReferenceTypes">Whether the emitted file enables nullable reference types (C# 8 and later).</param>
internal sealed record WrapperPlan(
    string ReturnType,
    EquatableArray<WrapperParameter> Parameters,
    RuntimeArguments Arguments,
    string NativeCall,
    EquatableArray<string> UnknownParameters,
    EquatableArray<string> UnknownNeutralChecks,
    bool UnknownArgumentsCanBeNeutral,
    EquatableArray<string> RuntimeOnlyFeatures,
    OptionsConstruction OptionsConstruction,
    bool NullableReferenceTypes)
{
    /// <summary>Builds the plan for a compilation; null when it has no TorchSharp SDPA to mirror (then no code is generated).</summary>
    /// <param name="facts">What the parser read from the compilation.</param>
    public static WrapperPlan? Create(CompilationFacts facts)
    {
        if (facts.Sdpa is not { } sdpa)
        {
            return null;
        }

        // The argument each runtime parameter receives: the wrapper's parameter of that role, else the runtime's neutral value.
        var arguments = new Dictionary<SdpaParameterRole, string>
        {
            [SdpaParameterRole.Query] = "query",
            [SdpaParameterRole.Key] = "key",
            [SdpaParameterRole.Value] = "value",
            [SdpaParameterRole.Mask] = "null",
            [SdpaParameterRole.DropoutProbability] = "0.0",
            [SdpaParameterRole.Causal] = "false",
            [SdpaParameterRole.Scale] = "null",
            [SdpaParameterRole.EnableGqa] = "false",
        };
        var mapped = new HashSet<SdpaParameterRole>();
        var parameters = new List<WrapperParameter>();
        var unknown = new List<string>();
        var neutralChecks = new List<string>();
        bool canBeNeutral = true;
        var names = new HashSet<string>();

        foreach (SdpaParameter parameter in sdpa.Parameters)
        {
            names.Add(parameter.Name.TrimStart('@'));
            parameters.Add(new WrapperParameter(parameter.Name, parameter.Type, parameter.DefaultValue, Describe(parameter.Role)));
            if (parameter.Role != SdpaParameterRole.Unknown)
            {
                arguments[parameter.Role] = parameter.Name;
                mapped.Add(parameter.Role);
            }
            else
            {
                unknown.Add(parameter.Name.TrimStart('@'));
                if (parameter.NeutralCheck is null)
                {
                    canBeNeutral = false;
                }
                else
                {
                    neutralChecks.Add(parameter.NeutralCheck);
                }
            }
        }

        // PyTorch's scale and enable_gqa, which TorchSharp 0.107 lacks: added unless TorchSharp already has a
        // parameter of that name (mapped above, or forwarded if it means something else).
        foreach ((SdpaParameterRole role, string name, string type, string defaultValue) in new[]
        {
            (SdpaParameterRole.Scale, "scale", "double?", "null"),
            (SdpaParameterRole.EnableGqa, "enable_gqa", "bool", "false"),
        })
        {
            if (!names.Contains(name))
            {
                parameters.Add(new WrapperParameter(name, type, defaultValue, Describe(role)));
                arguments[role] = name;
                mapped.Add(role);
            }
        }

        // What ChunkedSdpa.IsNativeCall rules out, named as the wrapper's parameters (TorchSharp throws for
        // is_causal together with a mask; the runtime applies both).
        var runtimeOnly = new List<string> { arguments[SdpaParameterRole.Scale].TrimStart('@'), arguments[SdpaParameterRole.EnableGqa].TrimStart('@') };
        if (mapped.Contains(SdpaParameterRole.Mask) && mapped.Contains(SdpaParameterRole.Causal))
        {
            runtimeOnly.Add(arguments[SdpaParameterRole.Causal].TrimStart('@') + " with " + arguments[SdpaParameterRole.Mask].TrimStart('@'));
        }

        return new WrapperPlan(
            sdpa.ReturnType,
            parameters.ToEquatableArray(),
            new RuntimeArguments(
                arguments[SdpaParameterRole.Query],
                arguments[SdpaParameterRole.Key],
                arguments[SdpaParameterRole.Value],
                arguments[SdpaParameterRole.Mask],
                arguments[SdpaParameterRole.DropoutProbability],
                arguments[SdpaParameterRole.Causal],
                arguments[SdpaParameterRole.Scale],
                arguments[SdpaParameterRole.EnableGqa]),
            NativeCallOf(sdpa),
            unknown.ToEquatableArray(),
            neutralChecks.ToEquatableArray(),
            canBeNeutral,
            runtimeOnly.ToEquatableArray(),
            facts.OptionsConstruction,
            facts.NullableReferenceTypes);
    }

    private static string NativeCallOf(SdpaSignature sdpa)
    {
        // Named after the first three, so the call binds to the mirrored overload only.
        IEnumerable<string> arguments = sdpa.Parameters.Select((parameter, i) => i < 3 ? parameter.Name : parameter.Name + ": " + parameter.Name);
        return sdpa.ContainingType + "." + sdpa.MethodName + "(" + string.Join(", ", arguments) + ")";
    }

    private static string Describe(SdpaParameterRole role) => role switch
    {
        SdpaParameterRole.Query => "The queries, shape (N..., Hq, L, E).",
        SdpaParameterRole.Key => "The keys, shape (N..., Hkv, S, E).",
        SdpaParameterRole.Value => "The values, shape (N..., Hkv, S, Ev).",
        SdpaParameterRole.Mask => "Optional mask broadcastable to (N..., Hq, L, S): bool (true = may attend) or floating (added to the scores).",
        SdpaParameterRole.DropoutProbability => "Dropout probability in [0, 1).",
        SdpaParameterRole.Causal => "Causal attention, top-left aligned: row i attends to keys j &lt;= i. With a mask, both apply.",
        SdpaParameterRole.Scale => "Scale applied to the scores; null means 1/sqrt(E).",
        SdpaParameterRole.EnableGqa => "Grouped-query attention: Hq must be a multiple of Hkv, each key/value head serving Hq/Hkv query heads.",
        _ => "Forwarded to TorchSharp's <c>scaled_dot_product_attention</c>; a value other than the default keeps the call native.",
    };
}

/// <summary>The runtime's SDPA arguments, each the wrapper's parameter of that role or the runtime's neutral value.</summary>
/// <param name="Query">The query.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The value.</param>
/// <param name="Mask">The <c>attn_mask</c>.</param>
/// <param name="DropoutProbability">The <c>p</c>.</param>
/// <param name="Causal">The <c>is_causal</c>.</param>
/// <param name="Scale">The <c>scale</c>.</param>
/// <param name="EnableGqa">The <c>enable_gqa</c>.</param>
internal sealed record RuntimeArguments(
    string Query, string Key, string Value, string Mask, string DropoutProbability, string Causal, string Scale, string EnableGqa)
{
    /// <summary>The arguments of <c>ChunkedSdpa.Attention</c> and <c>ChunkedSdpa.Native</c>, options excluded.</summary>
    public string Call => string.Join(", ", Query, Key, Value, Mask, DropoutProbability, Causal, Scale, EnableGqa);

    /// <summary>The arguments of <c>ChunkedSdpa.IsNativeCall</c>.</summary>
    public string NativeCallCheck => string.Join(", ", Mask, Causal, Scale, EnableGqa);
}

/// <summary>One parameter of the wrapper.</summary>
/// <param name="Name">The name as written in C#.</param>
/// <param name="Type">The type as written in C#.</param>
/// <param name="DefaultValue">The default as C#; null when required.</param>
/// <param name="Documentation">The XML doc text of the parameter.</param>
internal sealed record WrapperParameter(string Name, string Type, string? DefaultValue, string Documentation);
