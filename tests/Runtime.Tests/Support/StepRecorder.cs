using System;
using System.Collections.Concurrent;
using System.Linq;
using ChunkedAttention.Guard;
using ChunkedAttention.Kernels;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// Counts the kernel steps of calls made through the internal <see cref="KernelHooks"/> seam, optionally with a
/// stand-in native SDPA and a private failure cache.
/// </summary>
internal sealed class StepRecorder
{
    private readonly ConcurrentQueue<AttentionStep> _steps = new();

    public StepRecorder(NativeSdpa? native = null, NativeFailureCache? cache = null)
    {
        Hooks = new KernelHooks
        {
            OnStep = _steps.Enqueue,
            Native = native ?? KernelHooks.Default.Native,
            FailureCache = cache ?? new NativeFailureCache(),
        };
    }

    public KernelHooks Hooks { get; }

    public NativeFailureCache FailureCache => Hooks.FailureCache;

    public AttentionStep[] Steps => _steps.ToArray();

    public int Count => _steps.Count;

    public long LargestScoreBlock => _steps.IsEmpty ? 0 : _steps.Max(s => s.ScoreElements);

    /// <summary>Installs these hooks for the calling flow (public entries and generated wrappers) until disposed.</summary>
    public IDisposable Install() => KernelHooks.Override(Hooks);

    /// <summary><see cref="ChunkedSdpa.Attention"/> (the guard) through these hooks.</summary>
    public Tensor Attention(Tensor q, Tensor k, Tensor v, ChunkedAttentionOptions options, Tensor? mask = null,
        bool causal = false, double? scale = null, bool gqa = false)
    {
        using var installed = Install();
        return ChunkedSdpa.Attention(q, k, v, mask, 0, causal, scale, gqa, options);
    }

    /// <summary><see cref="ChunkedSdpa.Chunked"/> (always chunked) through these hooks.</summary>
    public Tensor Chunked(Tensor q, Tensor k, Tensor v, ChunkedAttentionOptions options, Tensor? mask = null,
        bool causal = false, double? scale = null, bool gqa = false)
    {
        using var installed = Install();
        return ChunkedSdpa.Chunked(q, k, v, mask, 0, causal, scale, gqa, options);
    }
}
