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
/// causal chunks their band and ways to run the chunk loop (the runtime now does what measured best: an additive band
/// built once per call, one split and one cat). Each takes the
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

    /// <summary>The previous runtime's causal chunks: a bool band built per chunk (arange, compare), converted by native.</summary>
    public static Tensor CausalBoolPerChunk(AttentionInputs i, long rows, NativeSdpa native)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = (i.Query, i.Key, i.Value);
        var length = q.size(-2);
        var keyLength = k.size(-2);
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
                var band = arange(keys, device: q.device).le(arange(start, start + r, device: q.device).unsqueeze(1));
                result = native(qc, kc, vc, band, 0.0, false);
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
}
