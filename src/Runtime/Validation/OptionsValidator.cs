using System;
using System.Globalization;

namespace ChunkedAttention.Validation;

/// <summary>Checks a <see cref="ChunkedAttentionOptions"/> before any work (the analyzer's SDPA003 catches literals at build time).</summary>
internal static class OptionsValidator
{
    public static ChunkedAttentionOptions Validate(ChunkedAttentionOptions? options)
    {
        var o = options ?? ChunkedAttentionOptions.Default;
        if (o.ChunkSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), o.ChunkSize,
                Invariant($"options.ChunkSize must be >= 0 (0 = auto: the fewest equal chunks within the step budget; > 0 = query rows per chunk) but is {o.ChunkSize}. Use 0, or a positive value such as 1024."));
        }

        if (o.KeyChunkSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), o.KeyChunkSize,
                Invariant($"options.KeyChunkSize must be >= 0 (0 keeps the keys whole) but is {o.KeyChunkSize}. Use 0, or a positive block size such as 1024."));
        }

        if (o.MaxScoreElements < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), o.MaxScoreElements,
                Invariant($"options.MaxScoreElements must be >= 0 (0 = no cap) but is {o.MaxScoreElements}. Use 0, or a positive cap on batch*heads*rows*keys."));
        }

        if (o.Devices == AttentionDevices.None)
        {
            throw new ArgumentOutOfRangeException(nameof(options), o.Devices,
                Invariant($"options.Devices must select at least one device (Cpu, Cuda, Mps or All) but is {o.Devices}. To never chunk, call native SDPA or set CHUNKED_ATTENTION=off."));
        }

        return o;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
