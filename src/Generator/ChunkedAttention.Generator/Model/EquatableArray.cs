using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;

namespace ChunkedAttention.Generator.Model;

/// <summary>
/// An immutable array compared by its elements, so pipeline models that hold one stay value-equal
/// and the incremental driver can cache them (<see cref="ImmutableArray{T}"/> compares by reference).
/// </summary>
/// <typeparam name="T">The element type; itself value-equal.</typeparam>
internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IReadOnlyList<T>
    where T : IEquatable<T>
{
    /// <summary>The empty array.</summary>
    public static readonly EquatableArray<T> Empty = new(ImmutableArray<T>.Empty);

    // default(EquatableArray<T>) wraps a default ImmutableArray; every member treats it as empty.
    private readonly ImmutableArray<T> _items;

    /// <summary>Wraps <paramref name="items"/>.</summary>
    /// <param name="items">The elements.</param>
    public EquatableArray(ImmutableArray<T> items)
    {
        _items = items;
    }

    /// <summary>The elements as an <see cref="ImmutableArray{T}"/> (never default).</summary>
    public ImmutableArray<T> AsImmutableArray() => _items.IsDefault ? ImmutableArray<T>.Empty : _items;

    /// <summary>The number of elements.</summary>
    public int Count => _items.IsDefault ? 0 : _items.Length;

    /// <summary>Whether there are no elements.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>The element at <paramref name="index"/>.</summary>
    /// <param name="index">A zero-based index.</param>
    public T this[int index] => AsImmutableArray()[index];

    /// <inheritdoc/>
    public bool Equals(EquatableArray<T> other)
    {
        ImmutableArray<T> left = AsImmutableArray();
        ImmutableArray<T> right = other.AsImmutableArray();
        if (left.Length != right.Length)
        {
            return false;
        }

        for (int i = 0; i < left.Length; i++)
        {
            if (!EqualityComparer<T>.Default.Equals(left[i], right[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        // FNV-style combine: stable within a process, which is all the driver's cache needs.
        int hash = unchecked((int)2166136261);
        foreach (T item in AsImmutableArray())
        {
            hash = unchecked((hash ^ (item is null ? 0 : EqualityComparer<T>.Default.GetHashCode(item))) * 16777619);
        }

        return hash;
    }

    /// <summary>Compares two arrays element by element.</summary>
    /// <param name="left">The first array.</param>
    /// <param name="right">The second array.</param>
    public static bool operator ==(EquatableArray<T> left, EquatableArray<T> right) => left.Equals(right);

    /// <summary>Compares two arrays element by element.</summary>
    /// <param name="left">The first array.</param>
    /// <param name="right">The second array.</param>
    public static bool operator !=(EquatableArray<T> left, EquatableArray<T> right) => !left.Equals(right);

    /// <summary>Enumerates the elements without boxing.</summary>
    public ImmutableArray<T>.Enumerator GetEnumerator() => AsImmutableArray().GetEnumerator();

    IEnumerator<T> IEnumerable<T>.GetEnumerator() => ((IEnumerable<T>)AsImmutableArray()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable)AsImmutableArray()).GetEnumerator();
}

/// <summary>Creates <see cref="EquatableArray{T}"/> instances.</summary>
internal static class EquatableArray
{
    /// <summary>Wraps <paramref name="items"/> in an element-compared array.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="items">The elements.</param>
    public static EquatableArray<T> ToEquatableArray<T>(this ImmutableArray<T> items)
        where T : IEquatable<T> => new(items);

    /// <summary>Copies <paramref name="items"/> into an element-compared array.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="items">The elements.</param>
    public static EquatableArray<T> ToEquatableArray<T>(this IEnumerable<T> items)
        where T : IEquatable<T> => new(ImmutableArray.CreateRange(items));
}
