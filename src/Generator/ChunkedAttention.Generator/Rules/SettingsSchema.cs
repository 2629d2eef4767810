using System.Collections.Immutable;
using System.Globalization;
using System.Linq;

namespace ChunkedAttention.Generator.Rules;

/// <summary>
/// The runtime's settings, described once for this assembly: the members of <c>ChunkedAttentionOptions</c> in
/// the order emitted code sets them, which of them <c>[ChunkedAttention]</c> has, their defaults (equal to the
/// runtime's; a test reads those by reflection) and the rules the runtime's options validation applies (a test
/// feeds both the same boundary values).
/// </summary>
internal static class SettingsSchema
{
    /// <summary>Query rows per chunk; 0 = automatic (the fewest equal chunks within the step budget).</summary>
    public static readonly Setting ChunkSize = new(
        0,
        "ChunkSize",
        SettingType.Int32,
        defaultValue: 0,
        isAttributeSetting: true,
        problem: value => value < 0
            ? Invariant($"ChunkSize is {value}; it must be 0 (automatic: the fewest equal chunks within the step budget) or positive (query rows per chunk); set 0 or a positive value such as 1024")
            : null,
        note: value => value == 0 ? "automatic" : string.Empty);

    /// <summary>Keys per block; 0 keeps the keys whole.</summary>
    public static readonly Setting KeyChunkSize = new(
        1,
        "KeyChunkSize",
        SettingType.Int32,
        defaultValue: 0,
        isAttributeSetting: true,
        problem: value => value < 0
            ? Invariant($"KeyChunkSize is {value}; it must be 0 (keys kept whole) or positive (keys per block); set 0 or a positive value")
            : null,
        note: value => value == 0 ? "keys whole" : "key blocks");

    /// <summary>The device types on which chunking applies; None is rejected (chunking would never apply).</summary>
    public static readonly Setting Devices = new(
        2,
        "Devices",
        SettingType.Devices,
        defaultValue: AttentionDeviceFlags.Mps,
        isAttributeSetting: true,
        problem: value => value == AttentionDeviceFlags.None
            ? "Devices is None, so chunking would never apply; select at least one of AttentionDevices.Cpu, Cuda or Mps"
            : null);

    /// <summary>Cap on one step's score elements; 0 = no cap.</summary>
    public static readonly Setting MaxScoreElements = new(
        3,
        "MaxScoreElements",
        SettingType.Int64,
        defaultValue: 0,
        isAttributeSetting: true,
        problem: value => value < 0
            ? Invariant($"MaxScoreElements is {value}; it must be 0 (no cap) or a positive number of score elements; set 0 or a positive value")
            : null,
        note: value => value == 0 ? "no cap" : string.Empty);

    /// <summary>Try native SDPA first and chunk only after an MPS size failure.</summary>
    public static readonly Setting TryNativeFirst = new(4, "TryNativeFirst", SettingType.Boolean, defaultValue: 0, isAttributeSetting: true);

    /// <summary>
    /// Options only: the caller already checked <c>ChunkedSdpa.IsChunkingDevice</c>, as the generated wrapper
    /// does before it calls <c>ChunkedSdpa.Attention</c>, so the runtime does not check the device again.
    /// </summary>
    public static readonly Setting SkipDeviceCheck = new(5, "SkipDeviceCheck", SettingType.Boolean, defaultValue: 0, isAttributeSetting: false, wrapperValue: 1);

    /// <summary>Every member of <c>ChunkedAttentionOptions</c> the emitted code sets, in that order (<see cref="Setting.Index"/>).</summary>
    public static readonly ImmutableArray<Setting> OptionsMembers =
        ImmutableArray.Create(ChunkSize, KeyChunkSize, Devices, MaxScoreElements, TryNativeFirst, SkipDeviceCheck);

    /// <summary>The settings <c>[ChunkedAttention]</c> has.</summary>
    public static readonly ImmutableArray<Setting> AttributeSettings =
        OptionsMembers.Where(setting => setting.IsAttributeSetting).ToImmutableArray();

    /// <summary>
    /// The attribute setting an argument sets: a named argument by property name, a constructor argument by
    /// parameter name. Null for a name this generator does not know (a newer runtime's; it cannot be honoured).
    /// </summary>
    /// <param name="name">The property or constructor parameter name.</param>
    public static Setting? FindAttributeSetting(string name)
    {
        foreach (Setting setting in AttributeSettings)
        {
            if (setting.Name == name || setting.ParameterName == name)
            {
                return setting;
            }
        }

        return null;
    }

    private static string Invariant(System.FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
