using System;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// Native SDPA with every adaptation done by hand, independently of the runtime's code: the query scaled
/// for <c>scale</c>, K/V heads repeated for GQA, causal and mask merged through <c>tril</c>.
/// </summary>
internal static class Reference
{
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
            var band = ones(new[] { q.size(-2), k.size(-2) }, ScalarType.Bool).tril();
            if (mask.dtype == ScalarType.Bool)
            {
                mask = mask.logical_and(band);
            }
            else
            {
                var additive = zeros(band.shape, mask.dtype).masked_fill(band.logical_not(), double.NegativeInfinity);
                mask = mask + additive;
            }

            causal = false;
        }

        return nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal);
    }

    /// <summary>Broadcast shape of two shapes (test helper; inputs are known to broadcast).</summary>
    public static long[] BroadcastShape(long[] a, long[] b)
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

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        if (a.numel() == 0)
        {
            return 0;
        }

        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        var diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= tolerance, $"max abs diff {diff:G4} > {tolerance:G4}");
    }

    public static Generator Seeded(long seed) => new Generator((ulong)seed);

    public static Tensor Randn(Generator g, params long[] shape) => randn(shape, generator: g);
}
