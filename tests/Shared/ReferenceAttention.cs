using System;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Testing;

/// <summary>
/// References the runtime is compared with, written independently of its code:
/// <see cref="Native"/> (TorchSharp's SDPA with every adaptation done by hand) and <see cref="Exact"/>
/// (attention written out in Float64 on the CPU, with fully masked rows as zeros).
/// </summary>
public static class ReferenceAttention
{
    /// <summary>
    /// Native SDPA on the inputs' device and dtype: the query scaled for <paramref name="scale"/>, key/value heads
    /// repeated for GQA, causal and mask merged through <c>tril</c> (TorchSharp throws when both are given).
    /// </summary>
    public static Tensor Native(Tensor q, Tensor k, Tensor v, Tensor? mask = null, double p = 0, bool causal = false,
        double? scale = null, bool gqa = false)
    {
        var e = q.size(-1);
        if (scale is { } s)
        {
            q = q * (s * Math.Sqrt(e));
        }

        if (gqa)
        {
            k = k.repeat_interleave(q.size(-3) / k.size(-3), dim: -3);
            v = v.repeat_interleave(q.size(-3) / v.size(-3), dim: -3);
        }

        if (causal && mask is not null)
        {
            var band = ones(new[] { q.size(-2), k.size(-2) }, ScalarType.Bool, q.device).tril();
            if (mask.dtype == ScalarType.Bool)
            {
                mask = mask.logical_and(band);
            }
            else
            {
                var additive = zeros(band.shape, mask.dtype, mask.device).masked_fill(band.logical_not(), double.NegativeInfinity);
                mask = mask + additive;
            }

            causal = false;
        }

        return nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal);
    }

    /// <summary>
    /// softmax(q·kᵀ·scale + mask, causal band)·v in Float64 on the CPU, from the inputs as given (a half-precision
    /// input's own values, exactly). A row that sees no key is zeros. The result is Float64 on the CPU.
    /// </summary>
    public static Tensor Exact(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false,
        double? scale = null, bool gqa = false)
    {
        using var scope = NewDisposeScope();
        var q64 = q.detach().to(ScalarType.Float64, CPU);
        var k64 = k.detach().to(ScalarType.Float64, CPU);
        var v64 = v.detach().to(ScalarType.Float64, CPU);
        return scope.MoveToOuter(ExactFromFloat64(q64, k64, v64, mask, causal, scale, gqa));
    }

    /// <summary>
    /// <see cref="Exact"/> on Float64 CPU tensors that may require grad (for gradient references: autograd through it
    /// gives exact gradients, zero for fully masked rows).
    /// </summary>
    public static Tensor ExactFromFloat64(Tensor q64, Tensor k64, Tensor v64, Tensor? mask, bool causal, double? scale, bool gqa)
    {
        if (gqa)
        {
            k64 = k64.repeat_interleave(q64.size(-3) / k64.size(-3), dim: -3);
            v64 = v64.repeat_interleave(q64.size(-3) / v64.size(-3), dim: -3);
        }

        var l = q64.size(-2);
        var s = k64.size(-2);
        var factor = scale ?? 1.0 / Math.Sqrt(q64.size(-1));
        var scores = q64.matmul(k64.transpose(-2, -1)) * factor;

        // Visible: the keys each row may attend (bool, broadcasting to the scores).
        var visible = ones(new[] { l, s }, ScalarType.Bool);
        if (causal)
        {
            visible = visible.tril();
        }

        if (mask is not null)
        {
            var m = mask.detach().to(CPU);
            if (m.dtype == ScalarType.Bool)
            {
                visible = visible.logical_and(m);
            }
            else
            {
                var m64 = m.to(ScalarType.Float64);
                visible = visible.logical_and(m64.isneginf().logical_not());
                scores = scores + m64.masked_fill(m64.isneginf(), 0.0);
            }
        }

        var shape = Broadcast(scores.shape, visible.shape);
        visible = visible.expand(shape);
        scores = scores.expand(shape);
        var rowSeesAKey = visible.any(-1, keepdim: true);
        var hidden = visible.logical_not();
        // Fully masked rows: softmax over zeros (finite, no NaN in forward or backward), then zeroed.
        var safeScores = scores.masked_fill(hidden, double.NegativeInfinity).masked_fill(rowSeesAKey.logical_not(), 0.0);
        var weights = safeScores.softmax(-1) * rowSeesAKey.to(ScalarType.Float64);
        return weights.matmul(v64);
    }

    /// <summary>Broadcast shape of two shapes.</summary>
    public static long[] Broadcast(long[] a, long[] b)
    {
        var rank = Math.Max(a.Length, b.Length);
        var r = new long[rank];
        for (var i = 1; i <= rank; i++)
        {
            var x = i <= a.Length ? a[^i] : 1;
            var y = i <= b.Length ? b[^i] : 1;
            r[^i] = Math.Max(x, y);
        }

        return r;
    }

    /// <summary>Largest |a - b| in Float64 (NaN when either holds a NaN where the other does not); 0 for empty tensors.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        if (!a.shape.AsSpan().SequenceEqual(b.shape))
        {
            throw new ArgumentException($"shapes differ: [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}]");
        }

        if (a.numel() == 0)
        {
            return 0;
        }

        using var scope = NewDisposeScope();
        var diff = (a.detach().to(ScalarType.Float64, CPU) - b.detach().to(ScalarType.Float64, CPU)).abs();
        if (diff.isnan().any().item<bool>())
        {
            return double.NaN;
        }

        return diff.max().item<double>();
    }
}
