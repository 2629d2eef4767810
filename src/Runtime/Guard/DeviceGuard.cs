using ChunkedAttention.Planning;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Guard;

/// <summary>
/// The device half of the guard: whether a call on the query's device may chunk at all. It reads only the
/// device type and <c>CHUNKED_ATTENTION</c>, never shapes, so the generated wrapper can afford it on every call.
/// </summary>
internal static class DeviceGuard
{
    /// <summary>True when <paramref name="mode"/> and <paramref name="devices"/> allow chunking on the query's device.</summary>
    public static bool Applies(Tensor query, AttentionDevices devices, ChunkingMode mode) => mode switch
    {
        ChunkingMode.Off => false,
        ChunkingMode.Always => true,
        _ => (devices & DeviceOf(query)) != AttentionDevices.None,
    };

    /// <summary>The <see cref="AttentionDevices"/> flag of a tensor's device type; None for device types without one.</summary>
    public static AttentionDevices DeviceOf(Tensor tensor) => tensor.device_type switch
    {
        DeviceType.CPU => AttentionDevices.Cpu,
        DeviceType.CUDA => AttentionDevices.Cuda,
        DeviceType.MPS => AttentionDevices.Mps,
        _ => AttentionDevices.None,
    };
}
