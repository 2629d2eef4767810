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
    private WrapperPlan()
    {
    }

    /// <summary>The wrapper's parameters in order.</summary>
    public List<WrapperParameter> Parameters { get; } = new();

    /// <summary>The runtime's query argument.</summary>
    public string Query { get; private set; } = "query";

    /// <summary>The runtime's key argument.</summary>
    public string Key { get; private set; } = "key";

    /// <summary>The runtime's value argument.</summary>
    public string Value { get; private set; } = "value";

    /// <summary>The runtime's <c>attn_mask</c> argument.</summary>
    public string Mask { get; private set; } = "null";

    /// <summary>The runtime's <c>p</c> argument.</summary>
    public string DropoutProbability { get; private set; } = "0.0";

    /// <summary>The runtime's <c>is_causal</c> argument.</summary>
    public string Causal { get; private set; } = "false";

    /// <summary>The runtime's <c>scale</c> argument.</summary>
    public string Scale { get; private set; } = "null";

    /// <summary>The runtime's <c>enable_gqa</c> argument.</summary>
    public string EnableGqa { get; private set; } = "false";

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
        string? mask = null;
        string? causal = null;
        foreach (SdpaParameter parameter in sdpa.Parameters)
        {
            names.Add(parameter.Name.TrimStart('@'));
            plan.Parameters.Add(new WrapperParameter(parameter.Name, parameter.Type, parameter.DefaultValue, Describe(parameter)));
            switch (parameter.Role)
            {
                case SdpaParameterRole.Query:
                    plan.Query = parameter.Name;
                    break;
                case SdpaParameterRole.Key:
                    plan.Key = parameter.Name;
                    break;
                case SdpaParameterRole.Value:
                    plan.Value = parameter.Name;
                    break;
                case SdpaParameterRole.Mask:
                    plan.Mask = mask = parameter.Name;
                    break;
                case SdpaParameterRole.DropoutProbability:
                    plan.DropoutProbability = parameter.Name;
                    break;
                case SdpaParameterRole.Causal:
                    plan.Causal = causal = parameter.Name;
                    break;
                case SdpaParameterRole.Scale:
                    plan.Scale = parameter.Name;
                    break;
                case SdpaParameterRole.EnableGqa:
                    plan.EnableGqa = parameter.Name;
                    break;
                default:
                    plan.UnknownParameters.Add(parameter.Name.TrimStart('@'));
                    if (parameter.NeutralCheck is null)
                    {
                        plan.UnknownArgumentsCanBeNeutral = false;
                    }
                    else
                    {
                        plan.UnknownNeutralChecks.Add(parameter.NeutralCheck);
                    }

                    break;
            }
        }

        // PyTorch's scale and enable_gqa, which TorchSharp 0.107 lacks: added unless TorchSharp
        // already has a parameter of that name (mapped above, or forwarded if it means something else).
        if (!names.Contains("scale"))
        {
            plan.Parameters.Add(new WrapperParameter("scale", "double?", "null", ScaleDocumentation));
            plan.Scale = "scale";
            plan.NativeOnlyConditions.Add("scale is null");
            plan.NativeOnlyFeatures.Add("scale");
        }

        if (!names.Contains("enable_gqa"))
        {
            plan.Parameters.Add(new WrapperParameter("enable_gqa", "bool", "false", EnableGqaDocumentation));
            plan.EnableGqa = "enable_gqa";
            plan.NativeOnlyConditions.Add("!enable_gqa");
            plan.NativeOnlyFeatures.Add("enable_gqa");
        }

        if (mask is not null && causal is not null)
        {
            // TorchSharp throws for is_causal together with a mask; the runtime applies both.
            plan.NativeOnlyConditions.Add("!(" + causal + " && !(" + mask + " is null))");
            plan.NativeOnlyFeatures.Add(causal.TrimStart('@') + " with " + mask.TrimStart('@'));
        }

        return plan;
    }

    private const string ScaleDocumentation = "Scale applied to the scores; null means 1/sqrt(E).";

    private const string EnableGqaDocumentation = "Grouped-query attention: Hq must be a multiple of Hkv, each key/value head serving Hq/Hkv query heads.";

    private static string Describe(SdpaParameter parameter) => parameter.Role switch
    {
        SdpaParameterRole.Query => "The queries, shape (N..., Hq, L, E).",
        SdpaParameterRole.Key => "The keys, shape (N..., Hkv, S, E).",
        SdpaParameterRole.Value => "The values, shape (N..., Hkv, S, Ev).",
        SdpaParameterRole.Mask => "Optional mask broadcastable to (N..., Hq, L, S): bool (true = may attend) or floating (added to the scores).",
        SdpaParameterRole.DropoutProbability => "Dropout probability in [0, 1).",
        SdpaParameterRole.Causal => "Causal attention, top-left aligned: row i attends to keys j &lt;= i. With a mask, both apply.",
        SdpaParameterRole.Scale => ScaleDocumentation,
        SdpaParameterRole.EnableGqa => EnableGqaDocumentation,
        _ => "Forwarded to TorchSharp's <c>scaled_dot_product_attention</c>; a value other than the default keeps the call native.",
    };
}

/// <summary>One parameter of the wrapper.</summary>
/// <param name="Name">The name as written in C#.</param>
/// <param name="Type">The type as written in C#.</param>
/// <param name="DefaultValue">The default as C#; null when required.</param>
/// <param name="Documentation">The XML doc text of the parameter.</param>
internal sealed record WrapperParameter(string Name, string Type, string? DefaultValue, string Documentation);
