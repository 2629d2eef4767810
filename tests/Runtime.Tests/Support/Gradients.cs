using System;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// Forward + backward of native SDPA (<see cref="Reference.Native"/>) and of the chunked path on fresh leaf copies of the
/// same inputs, with the same random upstream gradient, so outputs and gradients can be compared.
/// </summary>
internal static class Gradients
{
    /// <summary>One forward + backward: the output and the gradients of query, key, value and (when it required grad) the mask.</summary>
    public sealed record Result(Tensor Output, Tensor? Query, Tensor? Key, Tensor? Value, Tensor? Mask);

    public delegate Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? mask);

    /// <summary>Runs <paramref name="attention"/> on leaf copies (requiring grad as asked) and backpropagates Σ out ∘ w.</summary>
    public static Result Run(Attention attention, Tensor q, Tensor k, Tensor v, Tensor? mask, bool maskGrad = false,
        bool queryGrad = true, bool keyGrad = true, bool valueGrad = true, long upstreamSeed = 99)
    {
        var q1 = q.detach().clone().requires_grad_(queryGrad);
        var k1 = k.detach().clone().requires_grad_(keyGrad);
        var v1 = v.detach().clone().requires_grad_(valueGrad);
        var m1 = mask is null ? null : maskGrad ? mask.detach().clone().requires_grad_(true) : mask;
        var output = attention(q1, k1, v1, m1);
        var upstream = Reference.Randn(Reference.Seeded(upstreamSeed), output.shape).to(output.dtype);
        (output.to(ScalarType.Float64) * upstream.to(ScalarType.Float64)).sum().backward();
        return new Result(output.detach(), q1.grad, k1.grad, v1.grad, maskGrad ? m1!.grad : null);
    }

    /// <summary>
    /// Native's and the chunked path's outputs and gradients agree: the output within 1e-5 and each gradient within
    /// 1e-5 relative to its own scale (max |native gradient|, at least 1).
    /// </summary>
    public static void AssertChunkedMatchesNative(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false,
        double? scale = null, bool gqa = false, int chunk = SmallChunks.QueryRows, int keyChunk = 0, bool maskGrad = false)
    {
        using var scope = NewDisposeScope();
        var native = Run((a, b, c, m) => Reference.Native(a, b, c, m, causal: causal, scale: scale, gqa: gqa), q, k, v, mask, maskGrad);
        var chunked = Run((a, b, c, m) => SmallChunks.Chunked(a, b, c, m, causal: causal, scale: scale, gqa: gqa,
            chunk: chunk, keyChunk: keyChunk), q, k, v, mask, maskGrad);
        AssertSame(native, chunked, 1e-5);
    }

    /// <summary>Output within <paramref name="tolerance"/>; each gradient within tolerance x its scale.</summary>
    public static void AssertSame(Result expected, Result actual, double tolerance)
    {
        Reference.AssertClose(expected.Output, actual.Output, tolerance * Math.Max(1, MaxAbs(expected.Output)));
        AssertGradient("query", expected.Query, actual.Query, tolerance);
        AssertGradient("key", expected.Key, actual.Key, tolerance);
        AssertGradient("value", expected.Value, actual.Value, tolerance);
        AssertGradient("attn_mask", expected.Mask, actual.Mask, tolerance);
    }

    public static void AssertGradient(string name, Tensor? expected, Tensor? actual, double tolerance)
    {
        Assert.True((expected is null) == (actual is null), $"{name}: gradient present in one run only");
        if (expected is null)
        {
            return;
        }

        Assert.Equal(expected.dtype, actual!.dtype);
        var bound = tolerance * Math.Max(1, MaxAbs(expected));
        var diff = Reference.MaxAbsDiff(expected, actual);
        Assert.True(diff <= bound, $"{name} gradient: max abs diff {diff:G4} > {bound:G4} (scale {MaxAbs(expected):G4})");
    }

    public static double MaxAbs(Tensor t)
    {
        if (t.numel() == 0)
        {
            return 0;
        }

        using var max = t.detach().to(ScalarType.Float64).abs().max();
        return max.item<double>();
    }
}
