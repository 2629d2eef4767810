using System;
using System.Globalization;

namespace ChunkedAttention.Planning;

/// <summary>What the <c>CHUNKED_ATTENTION</c> variable asks for.</summary>
internal enum ChunkingMode
{
    /// <summary>Chunk where the options' devices and the sizes say so.</summary>
    Auto,

    /// <summary>Never chunk: the guard always calls native SDPA.</summary>
    Off,

    /// <summary>Chunk on any device (the sizes still decide whether splitting is needed).</summary>
    Always,
}

/// <summary>The environment's overrides for one call.</summary>
/// <param name="Mode">From <c>CHUNKED_ATTENTION</c>.</param>
/// <param name="ChunkSize">From <c>CHUNKED_ATTENTION_CHUNK_SIZE</c>; null when unset.</param>
internal readonly record struct EnvironmentOverrides(ChunkingMode Mode, long? ChunkSize)
{
    public const string ModeVariable = "CHUNKED_ATTENTION";
    public const string ChunkSizeVariable = "CHUNKED_ATTENTION_CHUNK_SIZE";

    /// <summary>
    /// Reads both variables now. Called on every attention call (not cached), so a process can switch
    /// chunking off or change the chunk size while it runs. Unset or empty variables mean "no override".
    /// </summary>
    /// <exception cref="InvalidOperationException">A variable holds a value that is not understood.</exception>
    public static EnvironmentOverrides Read() =>
        new(ReadMode(), ParseChunkSize(Environment.GetEnvironmentVariable(ChunkSizeVariable)));

    /// <summary>Reads <c>CHUNKED_ATTENTION</c> alone: all the device guard needs.</summary>
    /// <exception cref="InvalidOperationException">The variable holds a value that is not understood.</exception>
    public static ChunkingMode ReadMode() => ParseMode(Environment.GetEnvironmentVariable(ModeVariable));

    internal static ChunkingMode ParseMode(string? raw)
    {
        var text = raw?.Trim();
        if (text is null || text.Length == 0 || text.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            return ChunkingMode.Auto;
        }

        if (text.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return ChunkingMode.Off;
        }

        if (text.Equals("always", StringComparison.OrdinalIgnoreCase))
        {
            return ChunkingMode.Always;
        }

        throw new InvalidOperationException(
            $"Environment variable {ModeVariable} has the invalid value '{raw}'. Use auto (default: chunk on the configured devices), off (never chunk) or always (chunk on any device), or unset it.");
    }

    internal static long? ParseChunkSize(string? raw)
    {
        var text = raw?.Trim();
        if (text is null || text.Length == 0)
        {
            return null;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            return value;
        }

        throw new InvalidOperationException(
            $"Environment variable {ChunkSizeVariable} has the invalid value '{raw}'. Use a positive integer up to {long.MaxValue.ToString(CultureInfo.InvariantCulture)} (query rows per chunk, e.g. 512), or unset it.");
    }
}
