using System;
using System.Collections.Generic;
using ChunkedAttention.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>
/// Records the native SDPA calls a chunked computation makes (through the runtime's kernel seam, or an
/// experiment's own native delegate), so the <em>floor</em> can be timed: the same native calls back to back with
/// nothing else, what the device cannot avoid once the work is split that way.
/// </summary>
internal sealed class NativeCallRecorder : IDisposable
{
    private readonly List<(Tensor Q, Tensor K, Tensor V, Tensor? Mask, bool Causal)> _calls = new();

    public int Count => _calls.Count;

    /// <summary>A native SDPA that records its arguments (aliases, kept alive past the caller's dispose scopes) and runs.</summary>
    public NativeSdpa Recording => (q, k, v, mask, p, causal) =>
    {
        _calls.Add((Keep(q), Keep(k), Keep(v), mask is null ? null : Keep(mask), causal));
        return nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal);
    };

    /// <summary>The recorded calls back to back; returns the last one's output.</summary>
    public Tensor Replay()
    {
        Tensor? last = null;
        foreach (var (q, k, v, mask, causal) in _calls)
        {
            last?.Dispose();
            last = nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, causal);
        }

        return last ?? throw new InvalidOperationException("no native call was recorded");
    }

    public void Dispose()
    {
        foreach (var (q, k, v, mask, _) in _calls)
        {
            q.Dispose();
            k.Dispose();
            v.Dispose();
            mask?.Dispose();
        }

        _calls.Clear();
    }

    private static Tensor Keep(Tensor t) => t.alias().DetachFromDisposeScope();
}

/// <summary>The runtime entry points the benchmark drives through its internal kernel seam.</summary>
internal static class RuntimeSeam
{
    public static NativeSdpa Default { get; } = KernelHooks.Default.Native;

    /// <summary><see cref="ChunkedSdpa.Chunked"/> with a chosen native SDPA (for recording the floor).</summary>
    public static Tensor Chunked(AttentionInputs i, ChunkedAttentionOptions options, NativeSdpa native)
    {
        using var hooks = KernelHooks.Override(new KernelHooks { Native = native });
        return ChunkedSdpa.Chunked(i.Query, i.Key, i.Value, i.Mask, 0.0, i.IsCausal, null, false, options);
    }
}

/// <summary>
/// Alternatives measured against the runtime's kernels on a device before choosing one (issue 15): ways to give
/// causal chunks their band, ways to run the chunk loop, and a half-precision key-block kernel. Each takes the
/// native SDPA to call, so its floor can be recorded like the runtime's.
/// </summary>
internal static class Experiments
{
    /// <summary>Causal chunks with the band as an additive mask in the query's dtype, built once per call as a
    /// (rows, L) triangle and sliced per chunk (chunk 0 keeps native is_causal).</summary>
    public static Tensor CausalAdditiveOnce(AttentionInputs i, long rows, NativeSdpa native) =>
        CausalOnce(i, rows, native, additive: true);

    /// <summary>The same with a bool band built once and sliced (native converts it to float per call).</summary>
    public static Tensor CausalBoolOnce(AttentionInputs i, long rows, NativeSdpa native) =>
        CausalOnce(i, rows, native, additive: false);

    private static Tensor CausalOnce(AttentionInputs i, long rows, NativeSdpa native, bool additive)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = (i.Query, i.Key, i.Value);
        var length = q.size(-2);
        var keyLength = k.size(-2);
        rows = Math.Min(rows, length);
        // Triangle at the right end: T[r, j] visible iff j <= (L - rows) + r. A chunk at `start` with r rows and
        // `keys` keys takes rows [rows - r, rows) and columns [L - start - r, L - start - r + keys).
        var visible = arange(length, device: q.device).view(1, length)
            .le(arange(rows, device: q.device).view(rows, 1) + (length - rows));
        var band = additive
            ? zeros(new[] { rows, length }, q.dtype, q.device).masked_fill_(visible.logical_not(), double.NegativeInfinity)
            : visible;
        var output = empty(new[] { q.size(0), q.size(1), length, v.size(-1) }, q.dtype, q.device);
        for (long start = 0; start < length; start += rows)
        {
            using var chunk = NewDisposeScope();
            var r = Math.Min(rows, length - start);
            var keys = Math.Min(keyLength, start + r);
            var qc = q.narrow(-2, start, r);
            var kc = keys == keyLength ? k : k.narrow(-2, 0, keys);
            var vc = keys == keyLength ? v : v.narrow(-2, 0, keys);
            Tensor result;
            if (start == 0)
            {
                result = native(qc, kc, vc, null, 0.0, true);
            }
            else
            {
                var mask = band.narrow(0, rows - r, r).narrow(1, length - start - r, keys);
                result = native(qc, kc, vc, mask, 0.0, false);
            }

            output.narrow(-2, start, r).copy_(result);
        }

        return scope.MoveToOuter(output);
    }

    /// <summary>The chunk loop as one split of query and mask, one native call per chunk, one cat at the end.</summary>
    public static Tensor SplitCat(AttentionInputs i, long rows, NativeSdpa native)
    {
        using var scope = NewDisposeScope();
        var queries = i.Query.split(rows, -2);
        var masks = i.Mask is { } m && m.size(-2) != 1 ? m.split(rows, -2) : null;
        var results = new Tensor[queries.Length];
        for (var c = 0; c < queries.Length; c++)
        {
            results[c] = native(queries[c], i.Key, i.Value, masks is null ? i.Mask : masks[c], 0.0, false);
        }

        return scope.MoveToOuter(cat(results, -2));
    }

    /// <summary>The runtime's chunk loop after converting a bool mask to an additive one in the query's dtype once per call.</summary>
    public static Tensor AdditiveMaskOnce(AttentionInputs i, ChunkedAttentionOptions options, NativeSdpa native)
    {
        using var scope = NewDisposeScope();
        var additive = i.Mask is { } m && m.dtype == ScalarType.Bool
            ? zeros(m.shape, i.Query.dtype, m.device).masked_fill_(m.logical_not(), double.NegativeInfinity)
            : i.Mask;
        return scope.MoveToOuter(RuntimeSeam.Chunked(i with { Mask = additive }, options, native));
    }

    /// <summary>
    /// Key blocks for half-precision inputs: q·kᵀ and p·v in the inputs' dtype (the matrix units' own), the softmax
    /// state (running max, sum and accumulator) in Float32, the score block updated in place (mask, max, exp), the
    /// empty-row guard folded into one clamp, no host syncs. No mask or a bool mask (inverted once per call).
    /// </summary>
    public static Tensor KeyBlocksHalf(AttentionInputs i, long rows, long keys)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = (i.Query, i.Key, i.Value);
        var length = q.size(-2);
        var keyLength = k.size(-2);
        var scale = 1.0 / Math.Sqrt(q.size(-1));
        var hidden = i.Mask?.logical_not();
        var output = empty(new[] { q.size(0), q.size(1), length, v.size(-1) }, q.dtype, q.device);
        for (long start = 0; start < length; start += rows)
        {
            using var chunk = NewDisposeScope();
            var r = Math.Min(rows, length - start);
            var query = q.narrow(-2, start, r).mul(scale);
            var rowHidden = hidden is { } h && h.size(-2) != 1 ? h.narrow(-2, start, r) : hidden;
            Tensor? max = null, sum = null, acc = null;
            for (long keyStart = 0; keyStart < keyLength; keyStart += keys)
            {
                using var block = NewDisposeScope();
                var n = Math.Min(keys, keyLength - keyStart);
                var scores = query.matmul(k.narrow(-2, keyStart, n).transpose(-2, -1));
                if (rowHidden is not null)
                {
                    var blockHidden = rowHidden.size(-1) == 1 ? rowHidden : rowHidden.narrow(-1, keyStart, n);
                    scores.masked_fill_(blockHidden, double.NegativeInfinity);
                }

                var blockMax = scores.amax(new long[] { -1 }, keepdim: true);
                var newMax = max is null ? blockMax.to(ScalarType.Float32) : max.maximum(blockMax);
                // A row with no visible key yet has max -inf: subtract a finite stand-in so exp gives 0, not NaN.
                var safeMax = newMax.clamp_min(-3.0e38);
                var weights = scores.sub_(safeMax).exp_();
                var blockSum = weights.sum(new long[] { -1 }, keepdim: true, type: ScalarType.Float32);
                var blockOut = weights.matmul(v.narrow(-2, keyStart, n));
                if (max is null)
                {
                    sum = blockSum;
                    acc = blockOut.to(ScalarType.Float32);
                }
                else
                {
                    var correction = max.sub(safeMax).exp_();
                    sum = sum!.mul_(correction).add_(blockSum);
                    acc = acc!.mul_(correction).add_(blockOut);
                }

                max = newMax;
                block.MoveToOuter(max, sum!, acc!);
            }

            // Every row that saw a key has sum >= 1 (its max contributes exp(0)); a row that saw none has sum 0
            // and acc 0, so clamping the sum to 1 gives zeros there without a separate test.
            output.narrow(-2, start, r).copy_(acc!.div_(sum!.clamp_min_(1.0)));
        }

        return scope.MoveToOuter(output);
    }
}
