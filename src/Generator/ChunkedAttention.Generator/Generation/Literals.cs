using System;
using System.Globalization;
using Microsoft.CodeAnalysis.CSharp;

namespace ChunkedAttention.Generator.Generation;

/// <summary>C# literals for constant values (invariant, round-trippable).</summary>
internal static class Literals
{
    /// <summary>Formats a constant as a C# literal of its own type; null for a type C# has no literal for.</summary>
    /// <param name="value">A boxed constant (never null).</param>
    public static string? Format(object value) => value switch
    {
        bool b => b ? "true" : "false",
        string s => SymbolDisplay.FormatLiteral(s, quote: true),
        char c => SymbolDisplay.FormatLiteral(c, quote: true),
        double d => FormatDouble(d),
        float f => FormatSingle(f),
        decimal m => m.ToString(CultureInfo.InvariantCulture) + "M",
        long l => l.ToString(CultureInfo.InvariantCulture) + "L",
        ulong ul => ul.ToString(CultureInfo.InvariantCulture) + "UL",
        uint ui => ui.ToString(CultureInfo.InvariantCulture) + "U",
        int i => i.ToString(CultureInfo.InvariantCulture),
        short or ushort or byte or sbyte => Convert.ToString(value, CultureInfo.InvariantCulture),
        _ => null,
    };

    private static string FormatDouble(double d)
    {
        if (double.IsNaN(d))
        {
            return "double.NaN";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "double.PositiveInfinity" : "double.NegativeInfinity";
        }

        string text = d.ToString("R", CultureInfo.InvariantCulture);
        return text.IndexOfAny(new[] { '.', 'E' }) >= 0 ? text : text + ".0";
    }

    private static string FormatSingle(float f)
    {
        if (float.IsNaN(f))
        {
            return "float.NaN";
        }

        if (float.IsInfinity(f))
        {
            return f > 0 ? "float.PositiveInfinity" : "float.NegativeInfinity";
        }

        return f.ToString("R", CultureInfo.InvariantCulture) + "F";
    }
}
