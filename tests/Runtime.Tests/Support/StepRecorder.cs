using System.Collections.Concurrent;
using System.Linq;
using ChunkedAttention.Kernels;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>Counts the kernel steps of a call through the internal <see cref="KernelHooks"/> seam.</summary>
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

    public AttentionStep[] Steps => _steps.ToArray();

    public int Count => _steps.Count;

    public long LargestScoreBlock => _steps.IsEmpty ? 0 : _steps.Max(s => s.ScoreElements);
}
