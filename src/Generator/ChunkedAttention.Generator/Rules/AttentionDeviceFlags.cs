using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace ChunkedAttention.Generator.Rules;

/// <summary>
/// The values of the runtime's <c>AttentionDevices</c> flags (the generator cannot reference the runtime),
/// which the emitter spells out by name.
/// </summary>
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

    private const string DevicesType = "global::ChunkedAttention.AttentionDevices";

    private static readonly (long Flag, string Name)[] Names = { (Cpu, "Cpu"), (Cuda, "Cuda"), (Mps, "Mps") };

    /// <summary>
    /// <paramref name="devices"/> as a C# expression of the runtime's enum (<c>global::ChunkedAttention.AttentionDevices.Cpu | ...</c>);
    /// flags this generator does not know (a newer runtime's) are kept by value.
    /// </summary>
    /// <param name="devices">The flags' integer value.</param>
    public static string Expression(long devices)
    {
        var parts = Parts(devices, out long unknownBits).Select(name => DevicesType + "." + name).ToList();
        if (unknownBits != 0)
        {
            parts.Add("(" + DevicesType + ")(" + unknownBits.ToString(CultureInfo.InvariantCulture) + ")");
        }

        return parts.Count == 0 ? DevicesType + ".None" : string.Join(" | ", parts);
    }

    /// <summary><paramref name="devices"/> for documentation: <c>Cpu | Mps</c>, <c>All</c>, unknown flags by value.</summary>
    /// <param name="devices">The flags' integer value.</param>
    public static string Display(long devices)
    {
        var parts = Parts(devices, out long unknownBits).ToList();
        if (unknownBits != 0)
        {
            parts.Add(unknownBits.ToString(CultureInfo.InvariantCulture));
        }

        return parts.Count == 0 ? "None" : string.Join(" | ", parts);
    }

    private static IEnumerable<string> Parts(long devices, out long unknownBits)
    {
        unknownBits = devices & ~All;
        if ((devices & All) == All)
        {
            return new[] { "All" };
        }

        return Names.Where(pair => (devices & pair.Flag) != 0).Select(pair => pair.Name).ToList();
    }
}
