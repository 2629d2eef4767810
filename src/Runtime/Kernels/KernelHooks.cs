using System;
using System.Threading;
using ChunkedAttention.Guard;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels;

/// <summary>
/// The seam between the planner-driven loops and the outside world: which native SDPA to call and who
/// watches the steps. Production code uses <see cref="Default"/>; tests and benchmarks install a counting
/// observer or a native call that fails like MPS does with <see cref="Override"/>, which every public entry of
/// <see cref="ChunkedSdpa"/> honours through <see cref="Current"/> (also for calls made by generated wrappers).
/// </summary>
internal sealed class KernelHooks
{
    private static readonly AsyncLocal<KernelHooks?> Installed = new();

    public static KernelHooks Default { get; } = new();

    /// <summary>The hooks installed for this async flow by <see cref="Override"/>, else <see cref="Default"/>.</summary>
    public static KernelHooks Current => Installed.Value ?? Default;

    /// <summary>Installs <paramref name="hooks"/> for this async flow until the result is disposed.</summary>
    public static IDisposable Override(KernelHooks hooks)
    {
        var previous = Installed.Value;
        Installed.Value = hooks;
        return new Restore(previous);
    }

    /// <summary>The native SDPA; TorchSharp's by default.</summary>
    public NativeSdpa Native { get; init; } = static (q, k, v, mask, p, causal) =>
        nn.functional.scaled_dot_product_attention(q, k, v, mask, p, causal);

    /// <summary>
    /// Forces the key-block kernel's form: 1 = one pass with an online softmax (the CPU's), 2 = two passes with the
    /// max folded into the product (accelerators'); null = by the device. Lets CPU tests run both.
    /// </summary>
    public int? KeyBlockPasses { get; init; }

    /// <summary>
    /// Forces how query chunks are joined: true = each copied into a preallocated output as it comes (the CPU's),
    /// false = one cat at the end (accelerators'); null = by the device. Lets CPU tests run both.
    /// </summary>
    public bool? CopyChunksAsTheyCome { get; init; }

    /// <summary>Called before every step; null = nobody watches.</summary>
    public Action<AttentionStep>? OnStep { get; init; }

    /// <summary>Where <see cref="ChunkedAttentionOptions.TryNativeFirst"/> remembers shapes native failed on.</summary>
    public NativeFailureCache FailureCache { get; init; } = NativeFailureCache.Shared;

    private sealed class Restore : IDisposable
    {
        private readonly KernelHooks? _previous;

        public Restore(KernelHooks? previous) => _previous = previous;

        public void Dispose() => Installed.Value = _previous;
    }
}
