#if NETSTANDARD2_0
namespace System;

/// <summary>
/// The part of .NET's <c>System.Index</c> the compiler needs for <c>shape[^1]</c> on arrays, so the
/// netstandard2.0 build compiles the same sources as net8.0.
/// </summary>
[Microsoft.CodeAnalysis.Embedded]
internal readonly struct Index
{
    private readonly int _value;

    public Index(int value, bool fromEnd = false)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "An index must not be negative.");
        }

        _value = fromEnd ? ~value : value;
    }

    public int Value => _value < 0 ? ~_value : _value;

    public bool IsFromEnd => _value < 0;

    public static implicit operator Index(int value) => new(value);

    public int GetOffset(int length) => IsFromEnd ? length - Value : Value;
}
#endif
