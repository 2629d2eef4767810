using System;
using System.Globalization;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Rules;

/// <summary>The C# type of a <see cref="Setting"/>; every value is carried as a <see cref="long"/> (booleans as 0/1).</summary>
internal enum SettingType
{
    /// <summary><c>int</c>.</summary>
    Int32,

    /// <summary><c>long</c>.</summary>
    Int64,

    /// <summary>The runtime's <c>AttentionDevices</c> flags.</summary>
    Devices,

    /// <summary><c>bool</c>.</summary>
    Boolean,
}

/// <summary>
/// One member of the runtime's <c>ChunkedAttentionOptions</c>: its name, type, default, validity rule and how
/// emitted code writes it. Everything else about settings in this assembly (the parser, SDPA003, the emitted
/// options initializer or constructor call, the wrapper's documentation) is driven from <see cref="SettingsSchema"/>.
/// </summary>
internal sealed class Setting
{
    private readonly Func<long, string?>? _problem;
    private readonly Func<long, string>? _note;

    internal Setting(
        int index,
        string name,
        SettingType type,
        long defaultValue,
        bool isAttributeSetting,
        long? wrapperValue = null,
        Func<long, string?>? problem = null,
        Func<long, string>? note = null)
    {
        Index = index;
        Name = name;
        ParameterName = char.ToLowerInvariant(name[0]) + name.Substring(1);
        Type = type;
        Default = defaultValue;
        IsAttributeSetting = isAttributeSetting;
        InitialValue = wrapperValue ?? defaultValue;
        _problem = problem;
        _note = note;
    }

    /// <summary>The position in <see cref="SettingsSchema.OptionsMembers"/> (and in a settings value array).</summary>
    public int Index { get; }

    /// <summary>The property name on the options (and on the attribute, for attribute settings).</summary>
    public string Name { get; }

    /// <summary>The options constructor's parameter name (and the attribute constructor's, where it has one).</summary>
    public string ParameterName { get; }

    /// <summary>The C# type.</summary>
    public SettingType Type { get; }

    /// <summary>The runtime's default: <c>new ChunkedAttentionAttribute()</c>'s and <c>ChunkedAttentionOptions.Default</c>'s value.</summary>
    public long Default { get; }

    /// <summary>Whether <c>[ChunkedAttention]</c> has this setting; false for options-only members the wrapper sets itself.</summary>
    public bool IsAttributeSetting { get; }

    /// <summary>
    /// What the generated options hold unless the attribute says otherwise: <see cref="Default"/> for attribute
    /// settings, the wrapper's own value for options-only members (<c>SkipDeviceCheck = true</c>: the wrapper
    /// checks the device itself).
    /// </summary>
    public long InitialValue { get; }

    /// <summary>
    /// Null when the runtime accepts <paramref name="value"/>; otherwise what is wrong and what to set instead,
    /// as SDPA003 says it.
    /// </summary>
    /// <param name="value">The setting's value.</param>
    public string? Problem(long value) => _problem?.Invoke(value);

    /// <summary>Reads an attribute argument of this setting; false when it does not bind (the compiler reports that).</summary>
    /// <param name="argument">The argument as Roslyn bound it.</param>
    /// <param name="value">The value, booleans as 0/1.</param>
    public bool TryRead(TypedConstant argument, out long value)
    {
        value = 0;
        if (argument.Kind is TypedConstantKind.Error or TypedConstantKind.Array || argument.Value is null)
        {
            return false;
        }

        try
        {
            value = Type switch
            {
                SettingType.Int32 => Convert.ToInt32(argument.Value, CultureInfo.InvariantCulture),
                SettingType.Boolean => Convert.ToBoolean(argument.Value, CultureInfo.InvariantCulture) ? 1 : 0,
                _ => Convert.ToInt64(argument.Value, CultureInfo.InvariantCulture),
            };
            return true;
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException)
        {
            return false;
        }
    }

    /// <summary>The C# expression emitted code passes for <paramref name="value"/>.</summary>
    /// <param name="value">The setting's value.</param>
    public string Expression(long value) => Type switch
    {
        SettingType.Int32 => ((int)value).ToString(CultureInfo.InvariantCulture),
        SettingType.Int64 => value.ToString(CultureInfo.InvariantCulture) + "L",
        SettingType.Boolean => value != 0 ? "true" : "false",
        _ => AttentionDeviceFlags.Expression(value),
    };

    /// <summary>The value as the wrapper's documentation shows it, with what it means where that is not obvious.</summary>
    /// <param name="value">The setting's value.</param>
    public string Display(long value)
    {
        string text = Type switch
        {
            SettingType.Boolean => value != 0 ? "true" : "false",
            SettingType.Devices => AttentionDeviceFlags.Display(value),
            _ => value.ToString(CultureInfo.InvariantCulture),
        };
        string note = _note?.Invoke(value) ?? string.Empty;
        return note.Length == 0 ? text : text + " (" + note + ")";
    }
}
