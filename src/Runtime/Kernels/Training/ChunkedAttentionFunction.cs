using System;
using System.Collections.Generic;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// The custom autograd function of the training path (TorchSharp's <c>torch.autograd.SingleTensorFunction</c>):
/// forward runs <see cref="TrainingForward"/> and saves only query, key, value, the mask, the output and the
/// per-row log-sum-exp; backward runs <see cref="TrainingBackward"/>, which recomputes every step's scores.
/// </summary>
/// <remarks>
/// Arguments of <c>apply</c>: query, key, value, attn_mask (or null), then the <see cref="TrainingCall"/>.
/// TorchSharp registers every tensor argument as an input of the node, and backward returns one entry per argument
/// (null for the call and for inputs that need no gradient). The tensors go through <c>save_for_backward</c>, so
/// autograd reports an input modified in place between forward and backward; the output is saved without a
/// reference cycle (autograd saves a function's own output without its grad_fn). Backward is not differentiable
/// itself (no double backward).
/// </remarks>
internal sealed class ChunkedAttentionFunction : SingleTensorFunction<ChunkedAttentionFunction>
{
    private const string CallKey = "call";
    private const string HasMaskKey = "mask";

    /// <inheritdoc/>
    public override string Name => "ChunkedAttentionBackward";

    /// <summary>Attention of one validated, planned call through this function.</summary>
    public static Tensor Apply(Tensor query, Tensor key, Tensor value, Tensor? mask, TrainingCall call) =>
        apply(query, key, value, mask!, call);

    /// <inheritdoc/>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (query, key, value, mask, call) = Unpack(vars);
        var (output, logSumExp) = TrainingForward.Run(call, query, key, value, mask);
        var saved = new List<Tensor> { query, key, value, output, logSumExp };
        if (mask is not null)
        {
            saved.Add(mask);
        }

        ctx.save_for_backward(saved);
        ctx.save_data(CallKey, call);
        ctx.save_data(HasMaskKey, mask is not null);
        return output;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Autograd calls this from native code, where a managed exception cannot pass (it would end the process).
    /// A failure (an input modified in place since forward, out of memory) is therefore written to standard error
    /// and turned into a gradient of an impossible shape, which makes autograd raise its own error in the caller's
    /// <c>backward()</c>.
    /// </remarks>
    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var call = (TrainingCall)ctx.get_data(CallKey);
        try
        {
            return Backward(ctx, call, grad_output);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"ChunkedAttention: backward of chunked attention failed: {e.Message}");
            return ReportedFailure(call);
        }
    }

    private static List<Tensor> Backward(AutogradContext ctx, TrainingCall call, Tensor gradOutput)
    {
        var hasMask = (bool)ctx.get_data(HasMaskKey);
        AttentionGradients gradients;
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            var mask = hasMask ? saved[5] : null;
            gradients = TrainingBackward.Run(call, saved[0], saved[1], saved[2], mask, saved[3], saved[4], gradOutput);
            scope.MoveToOuter(Present(gradients.Query, gradients.Key, gradients.Value, gradients.Mask));
        }

        // One entry per apply argument: query, key, value, attn_mask, call.
        return new List<Tensor> { gradients.Query!, gradients.Key!, gradients.Value!, gradients.Mask!, null! };
    }

    /// <summary>An empty 1-D gradient for the first input that needs one: autograd rejects its shape and throws.</summary>
    private static List<Tensor> ReportedFailure(TrainingCall call)
    {
        var needs = new[] { call.NeedsQueryGrad, call.NeedsKeyGrad, call.NeedsValueGrad, call.NeedsMaskGrad };
        var result = new List<Tensor> { null!, null!, null!, null!, null! };
        var first = Array.IndexOf(needs, true);
        result[first < 0 ? 0 : first] = empty(0);
        return result;
    }

    private static (Tensor Query, Tensor Key, Tensor Value, Tensor? Mask, TrainingCall Call) Unpack(object[] vars) =>
        ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], vars[3] as Tensor, (TrainingCall)vars[4]);

    private static Tensor[] Present(params Tensor?[] tensors)
    {
        var present = new List<Tensor>();
        foreach (var t in tensors)
        {
            if (t is not null)
            {
                present.Add(t);
            }
        }

        return present.ToArray();
    }
}
