using System.Collections.Generic;

namespace ChunkedAttention.Generator.Generation;

/// <summary>
/// How the wrapper maps TorchSharp's SDPA parameters onto the runtime's: its own parameter list
/// (TorchSharp's, then <c>scale</c> and <c>enable_gqa</c> unless TorchSharp has them) and the
/// argument each runtime parameter receives.
/// </summary>
/// <remarks>
/// Mapping rules, so a newer TorchSharp keeps working: the first three tensors are query, key and
/// value by position; the others are matched by name and type (<see cref="SdpaParameterRole"/>).
/// A role TorchSharp lacks gets the runtime's neutral value. A parameter that matches no role is
/// mirrored and forwarded to TorchSharp only: when its argument differs from its default the call
/// stays native, because the chunked kernels cannot honour semantics they do not know; when it has
/// no default comparable with <c>==</c>, the wrapper never chunks. A native-only call that also asks
/// for what only the runtime provides (<c>scale</c>, <c>enable_gqa</c>, causal with a mask) throws
/// <see cref="System.NotSupportedException"/> rather than silently dropping either.
/// </remarks>
internal sealed class WrapperPlan
{
    // The argument each runtime parameter receives: the wrapper's parameter of that role, else the runtime's neutral value.
    private readonly Dictionary<SdpaParameterRole, string> _arguments = new()
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

    // The roles a wrapper parameter fills.
    private readonly HashSet<SdpaParameterRole> _mapped = new();

    private WrapperPlan()
    {
    }

    /// <summary>The wrapper's parameters in order.</summary>
    public List<WrapperParameter> Parameters { get; } = new();

    /// <summary>The runtime's query argument.</summary>
    public string Query => _arguments[SdpaParameterRole.Query];

    /// <summary>The runtime's key argument.</summary>
    public string Key => _arguments[SdpaParameterRole.Key];

    /// <summary>The runtime's value argument.</summary>
    public string Value => _arguments[SdpaParameterRole.Value];

    /// <summary>The runtime's <c>attn_mask</c> argument.</summary>
    public string Mask => _arguments[SdpaParameterRole.Mask];

    /// <summary>The runtime's <c>p</c> argument.</summary>
    public string DropoutProbability => _arguments[SdpaParameterRole.DropoutProbability];

    /// <summary>The runtime's <c>is_causal</c> argument.</summary>
    public string Causal => _arguments[SdpaParameterRole.Causal];

    /// <summary>The runtime's <c>scale</c> argument.</summary>
    public string Scale => _arguments[SdpaParameterRole.Scale];

    /// <summary>The runtime's <c>enable_gqa</c> argument.</summary>
    public string EnableGqa => _arguments[SdpaParameterRole.EnableGqa];

    /// <summary>Conditions that all hold when TorchSharp's SDPA can compute the call itself.</summary>
    public List<string> NativeOnlyConditions { get; } = new();

    /// <summary>What <see cref="NativeOnlyConditions"/> rule out, for messages (<c>scale</c>, ...).</summary>
    public List<string> NativeOnlyFeatures { get; } = new();

    /// <summary>The parameters with <see cref="SdpaParameterRole.Unknown"/>, forwarded to TorchSharp only.</summary>
    public List<string> UnknownParameters { get; } = new();

    /// <summary>Conditions that all hold when unknown parameters have their defaults.</summary>
    public List<string> UnknownNeutralChecks { get; } = new();

    /// <summary>False when an unknown parameter can never be shown to hold its default.</summary>
    public bool UnknownArgumentsCanBeNeutral { get; private set; } = true;

    /// <summary>Builds the plan for <paramref name="sdpa"/>.</summary>
    /// <param name="sdpa">TorchSharp's SDPA signature.</param>
    public static WrapperPlan Create(SdpaSignature sdpa)
    {
        var plan = new WrapperPlan();
        var names = new HashSet<string>();
        foreach (SdpaParameter parameter in sdpa.Parameters)
        {
            names.Add(parameter.Name.TrimStart('@'));
            plan.Parameters.Add(new WrapperParameter(parameter.Name, parameter.Type, parameter.DefaultValue, Describe(parameter.Role)));
            if (parameter.Role != SdpaParameterRole.Unknown)
            {
                plan.Map(parameter.Role, parameter.Name);
            }
            else
            {
                plan.UnknownParameters.Add(parameter.Name.TrimStart('@'));
                if (parameter.NeutralCheck is null)
                {
                    plan.UnknownArgumentsCanBeNeutral = false;
                }
                else
                {
                    plan.UnknownNeutralChecks.Add(parameter.NeutralCheck);
                }
            }
        }

        // PyTorch's scale and enable_gqa, which TorchSharp 0.107 lacks: added unless TorchSharp
        // already has a parameter of that name (mapped above, or forwarded if it means something else).
        plan.AddRuntimeParameter(names, SdpaParameterRole.Scale, "scale", "double?", "null", nativeOnlyWhen: "scale is null");
        plan.AddRuntimeParameter(names, SdpaParameterRole.EnableGqa, "enable_gqa", "bool", "false", nativeOnlyWhen: "!enable_gqa");

        if (plan._mapped.Contains(SdpaParameterRole.Mask) && plan._mapped.Contains(SdpaParameterRole.Causal))
        {
            // TorchSharp throws for is_causal together with a mask; the runtime applies both.
            plan.NativeOnlyConditions.Add("!(" + plan.Causal + " && !(" + plan.Mask + " is null))");
            plan.NativeOnlyFeatures.Add(plan.Causal.TrimStart('@') + " with " + plan.Mask.TrimStart('@'));
        }

        return plan;
    }

    private void Map(SdpaParameterRole role, string parameterName)
    {
        _arguments[role] = parameterName;
        _mapped.Add(role);
    }

    // A parameter only the runtime honours: TorchSharp's SDPA can run the call when it holds its default.
    private void AddRuntimeParameter(
        HashSet<string> torchSharpNames, SdpaParameterRole role, string name, string type, string defaultValue, string nativeOnlyWhen)
    {
        if (torchSharpNames.Contains(name))
        {
            return;
        }

        Parameters.Add(new WrapperParameter(name, type, defaultValue, Describe(role)));
        Map(role, name);
        NativeOnlyConditions.Add(nativeOnlyWhen);
        NativeOnlyFeatures.Add(name);
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

/// <summary>One parameter of the wrapper.</summary>
/// <param name="Name">The name as written in C#.</param>
/// <param name="Type">The type as written in C#.</param>
/// <param name="DefaultValue">The default as C#; null when required.</param>
/// <param name="Documentation">The XML doc text of the parameter.</param>
internal sealed record WrapperParameter(string Name, string Type, string? DefaultValue, string Documentation);
