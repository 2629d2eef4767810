using System.Collections.Immutable;
using System.Linq;
using ChunkedAttention.Generator.Rules;

namespace ChunkedAttention.Generator.Model;

/// <summary>
/// The options one <c>[ChunkedAttention]</c> type's wrapper is built with, resolved to constants (named or
/// positional arguments, const fields and enum flag combinations all end up as values here): one value per
/// <see cref="SettingsSchema.OptionsMembers"/> entry, in that order, booleans as 0/1.
/// </summary>
/// <param name="Values">The values, indexed by <see cref="Setting.Index"/>.</param>
internal sealed record ChunkedAttentionSettings(EquatableArray<long> Values)
{
    /// <summary>What the wrapper's options hold when the attribute sets nothing.</summary>
    public static ChunkedAttentionSettings Initial { get; } =
        new(SettingsSchema.OptionsMembers.Select(setting => setting.InitialValue).ToEquatableArray());

    /// <summary>The value of <paramref name="setting"/>.</summary>
    /// <param name="setting">A member of <see cref="SettingsSchema.OptionsMembers"/>.</param>
    public long this[Setting setting] => Values[setting.Index];

    /// <summary>
    /// Whether the runtime accepts these settings (<see cref="Setting.Problem"/> of each). Invalid ones get no
    /// code; the analyzer reports them (SDPA003).
    /// </summary>
    public bool IsValid => SettingsSchema.AttributeSettings.All(setting => setting.Problem(this[setting]) is null);

    /// <summary>A copy with <paramref name="setting"/> set to <paramref name="value"/>.</summary>
    /// <param name="setting">A member of <see cref="SettingsSchema.OptionsMembers"/>.</param>
    /// <param name="value">The new value.</param>
    public ChunkedAttentionSettings With(Setting setting, long value) =>
        new(Values.AsImmutableArray().SetItem(setting.Index, value).ToEquatableArray());
}
