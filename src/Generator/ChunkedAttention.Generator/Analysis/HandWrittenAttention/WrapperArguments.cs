using System.Threading;
using ChunkedAttention.Generator.Generation;
using ChunkedAttention.Generator.Model;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// The names of the generated wrapper's mask, dropout and scale parameters for the referenced
/// TorchSharp, as the generator's own <see cref="WrapperPlan"/> maps them (so the fix writes exactly
/// the parameters the wrapper will have). Null where the wrapper has no such parameter.
/// </summary>
internal sealed class WrapperArguments
{
    private WrapperArguments(string? mask, string? dropout, string? scale)
    {
        Mask = mask;
        Dropout = dropout;
        Scale = scale;
    }

    /// <summary><c>attn_mask</c> in TorchSharp 0.107.</summary>
    public string? Mask { get; }

    /// <summary><c>p</c> in TorchSharp 0.107.</summary>
    public string? Dropout { get; }

    /// <summary><c>scale</c> (added by the generator while TorchSharp lacks it).</summary>
    public string? Scale { get; }

    /// <summary>Null when the compilation has no TorchSharp SDPA the generator can mirror.</summary>
    public static WrapperArguments? For(Compilation compilation, CancellationToken cancellationToken)
    {
        if (WrapperPlan.Create(Parser.ParseCompilationFacts(compilation, cancellationToken)) is not { } plan)
        {
            return null;
        }

        var arguments = plan.Arguments;
        return new WrapperArguments(Name(arguments.Mask), Name(arguments.DropoutProbability), Name(arguments.Scale));
    }

    // The plan names the wrapper's parameter, or gives the runtime's neutral literal where there is none.
    private static string? Name(string argument) =>
        argument.Length > 0 && (char.IsLetter(argument[0]) || argument[0] is '_' or '@') && argument != "null" ? argument : null;
}
