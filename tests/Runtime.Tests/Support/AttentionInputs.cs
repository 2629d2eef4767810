using System;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// Seeded random query (B, Hq, L, E), key (B, Hkv, S, E) and value (B, Hkv, S, Ev): the same numbers on every run.
/// Deconstructs to (q, k, v); disposing frees all three (for tests that count live tensors).
/// </summary>
internal sealed record AttentionInputs(Tensor Q, Tensor K, Tensor V) : IDisposable
{
    /// <param name="seed">Seed of the generator the three tensors are drawn from, in the order q, k, v.</param>
    /// <param name="l">Query length L.</param>
    /// <param name="s">Key length S.</param>
    /// <param name="hq">Query heads.</param>
    /// <param name="hkv">Key/value heads; null = <paramref name="hq"/>.</param>
    /// <param name="batch">Batch B.</param>
    /// <param name="e">Head dim E of query and key.</param>
    /// <param name="ev">Head dim Ev of value.</param>
    /// <param name="dtype">Drawn in Float32, then converted.</param>
    public static AttentionInputs Random(long seed, long l = 7, long s = 9, long hq = 3, long? hkv = null, long batch = 2,
        long e = 4, long ev = 5, ScalarType dtype = ScalarType.Float32)
    {
        var g = Reference.Seeded(seed);
        var kvHeads = hkv ?? hq;
        var q = Reference.Randn(g, batch, hq, l, e);
        var k = Reference.Randn(g, batch, kvHeads, s, e);
        var v = Reference.Randn(g, batch, kvHeads, s, ev);
        return dtype == ScalarType.Float32 ? new(q, k, v) : new(q.to(dtype), k.to(dtype), v.to(dtype));
    }

    public void Dispose()
    {
        Q.Dispose();
        K.Dispose();
        V.Dispose();
    }
}
