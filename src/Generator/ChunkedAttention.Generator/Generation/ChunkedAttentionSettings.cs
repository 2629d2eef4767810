namespace ChunkedAttention.Generator.Generation;

/// <summary>
/// The settings of one <c>[ChunkedAttention]</c> attribute, resolved to constants (named or
/// positional arguments, const fields and enum flag combinations all end up as values here).
/// </summary>
/// <param name="ChunkSize">Query rows per chunk.</param>
/// <param name="KeyChunkSize">Keys per block; 0 keeps keys whole.</param>
/// <param name="Devices">The <c>AttentionDevices</c> flags as their integer value.</param>
/// <param name="MaxScoreElements">Cap on one chunk's score elements; 0 = no cap.</param>
/// <param name="TryNativeFirst">Try native SDPA first and fall back to chunks when it fails.</param>
internal sealed record ChunkedAttentionSettings(
    int ChunkSize, int KeyChunkSize, long Devices, long MaxScoreElements, bool TryNativeFirst)
{
    /// <summary>The attribute's defaults (kept equal to the runtime's <c>ChunkedAttentionAttribute</c>).</summary>
    public static ChunkedAttentionSettings Default { get; } = new(
        ChunkSize: 1024, KeyChunkSize: 0, Devices: AttentionDeviceFlags.Mps, MaxScoreElements: 0, TryNativeFirst: false);

    /// <summary>
    /// Whether the runtime accepts these settings. Invalid ones get no code; the analyzer reports
    /// them (SDPA003).
    /// </summary>
    public bool IsValid => ChunkSize > 0 && KeyChunkSize >= 0 && MaxScoreElements >= 0 && Devices != AttentionDeviceFlags.None;
}

/// <summary>The values of the runtime's <c>AttentionDevices</c> flags, which the emitter spells out by name.</summary>
internal static class AttentionDeviceFlags
{
    /// <summary><c>AttentionDevices.None</c>.</summary>
    public const long None = 0;

    /// <summary><c>AttentionDevices.Cpu</c>.</summary>
    public const long Cpu = 1;

    /// <summary><c>AttentionDevices.Cuda</c>.</summary>
    public const long Cuda = 2;

    /// <summary><c>AttentionDevices.Mps</c>.</summary>
    public const long Mps = 4;

    /// <summary><c>AttentionDevices.All</c>.</summary>
    public const long All = Cpu | Cuda | Mps;
}
