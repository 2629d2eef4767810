using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using ChunkedAttention.Generator.Model;
using ChunkedAttention.Generator.Rules;

namespace ChunkedAttention.Generator.Generation;

/// <summary>How emitted code sets the runtime's <c>ChunkedAttentionOptions</c> members, from <see cref="SettingsSchema"/>.</summary>
internal static class OptionsMembers
{
    /// <summary>The options constructor's parameter names the emitted code passes below C# 9.</summary>
    public static ImmutableArray<string> ConstructorParameters { get; } =
        SettingsSchema.OptionsMembers.Select(setting => setting.ParameterName).ToImmutableArray();

    /// <summary>
    /// One line per member, in schema order: <c>ChunkSize = 1024,</c> in an object initializer, or
    /// <c>chunkSize: 1024,</c> in a constructor call (the last one closing the call with <c>);</c>).
    /// </summary>
    /// <param name="settings">The values.</param>
    /// <param name="construction">The form.</param>
    public static IEnumerable<string> Lines(ChunkedAttentionSettings settings, OptionsConstruction construction)
    {
        ImmutableArray<Setting> members = SettingsSchema.OptionsMembers;
        for (int i = 0; i < members.Length; i++)
        {
            string value = members[i].Expression(settings[members[i]]);
            yield return construction == OptionsConstruction.Constructor
                ? members[i].ParameterName + ": " + value + (i < members.Length - 1 ? "," : ");")
                : members[i].Name + " = " + value + ",";
        }
    }
}
