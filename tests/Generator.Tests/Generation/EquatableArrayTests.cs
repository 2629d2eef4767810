using System.Collections.Immutable;
using ChunkedAttention.Generator.Model;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>The value equality the driver's cache relies on.</summary>
public sealed class EquatableArrayTests
{
    [Fact]
    public void Arrays_with_equal_elements_are_equal_with_equal_hashes()
    {
        var left = ImmutableArray.Create("a", "b").ToEquatableArray();
        var right = ImmutableArray.Create("a", "b").ToEquatableArray();

        Assert.Equal(left, right);
        Assert.True(left == right);
        Assert.Equal(left.GetHashCode(), right.GetHashCode());
    }

    [Fact]
    public void Order_and_length_matter()
    {
        var ab = ImmutableArray.Create("a", "b").ToEquatableArray();

        Assert.NotEqual(ab, ImmutableArray.Create("b", "a").ToEquatableArray());
        Assert.NotEqual(ab, ImmutableArray.Create("a").ToEquatableArray());
    }

    [Fact]
    public void Default_is_empty()
    {
        EquatableArray<string> none = default;

        Assert.Equal(EquatableArray<string>.Empty, none);
        Assert.True(none.IsEmpty);
        Assert.Empty(none);
    }

    [Fact]
    public void Records_holding_arrays_compare_by_value()
    {
        var first = new TypeParameterInfo("T", ImmutableArray.Create("class", "new()").ToEquatableArray());
        var second = new TypeParameterInfo("T", ImmutableArray.Create("class", "new()").ToEquatableArray());

        Assert.Equal(first, second);
        Assert.NotEqual(first, second with { Name = "U" });
    }
}
