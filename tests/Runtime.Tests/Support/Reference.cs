using System;
using ChunkedAttention.Testing;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// The runtime tests' shorthands: native SDPA with every adaptation done by hand (the shared
/// <see cref="ReferenceAttention.Native"/>), tolerances and seeded inputs.
/// </summary>
internal static class Reference
{
    public static Tensor Native(Tensor q, Tensor k, Tensor v, Tensor? mask = null, double p = 0, bool causal = false,
        double? scale = null, bool gqa = false) =>
        ReferenceAttention.Native(q, k, v, mask, p, causal, scale, gqa);

    /// <summary>Broadcast shape of two shapes (test helper; inputs are known to broadcast).</summary>
    public static long[] BroadcastShape(long[] a, long[] b) => ReferenceAttention.Broadcast(a, b);

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
