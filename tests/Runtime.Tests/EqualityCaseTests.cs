using System.Collections.Generic;
using System.Linq;
using ChunkedAttention.Kernels;
using ChunkedAttention.Testing;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// The shared equality suite (tests/Shared/AttentionCases.cs) on the CPU: every case through Chunked, the guard's
/// chunking path and its native path, against native SDPA and the exact Float64 result (rule: <see cref="CaseCheck"/>).
/// The device check (tools/DeviceCheck) runs the same table on CUDA or MPS.
/// </summary>
public class EqualityCaseTests
{
    public static IEnumerable<object[]> Float32Cases() => AttentionCases.All.Select(c => new object[] { c.Name });

    /// <summary>Half precision: the cases whose handling differs by dtype (masks, fully masked rows, key blocks).</summary>
    public static IEnumerable<object[]> HalfCases() =>
        from c in AttentionCases.All
        where c.Mask != MaskKind.None || c.KeyChunkSize > 0
        from dtype in new[] { ScalarType.Float16, ScalarType.BFloat16 }
        select new object[] { c.Name, dtype };

    [Theory]
    [MemberData(nameof(Float32Cases))]
    public void Float32(string name) => AssertPasses(AttentionCases.Named(name), ScalarType.Float32);

    [Theory]
    [MemberData(nameof(HalfCases))]
    public void HalfPrecision(string name, ScalarType dtype) => AssertPasses(AttentionCases.Named(name), dtype);

    /// <summary>
    /// The key-block cases through the accelerators' two-pass kernel too (the CPU runs the one-pass online softmax by
    /// default), in every dtype, so both forms are held to the same rule here.
    /// </summary>
    public static IEnumerable<object[]> TwoPassCases() =>
        from c in AttentionCases.All
        where c.KeyChunkSize > 0 || c.MaxScoreRowsTimesKeys > 0
        from dtype in new[] { ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16 }
        select new object[] { c.Name, dtype };

    [Theory]
    [MemberData(nameof(TwoPassCases))]
    public void TwoPassKeyBlocks(string name, ScalarType dtype)
    {
        using var hooks = KernelHooks.Override(new KernelHooks { KeyBlockPasses = 2 });
        AssertPasses(AttentionCases.Named(name), dtype);
    }

    /// <summary>The query-chunk cases with the chunks joined by one cat, as on accelerators (the CPU copies as they come).</summary>
    public static IEnumerable<object[]> QueryChunkCases() =>
        AttentionCases.All.Where(c => c.KeyChunkSize == 0 && c.MaxScoreRowsTimesKeys == 0).Select(c => new object[] { c.Name });

    [Theory]
    [MemberData(nameof(QueryChunkCases))]
    public void QueryChunksJoinedByCat(string name)
    {
        using var hooks = KernelHooks.Override(new KernelHooks { CopyChunksAsTheyCome = false });
        AssertPasses(AttentionCases.Named(name), ScalarType.Float32);
    }

    [Fact]
    public void CaseNamesAreUnique() =>
        Assert.Equal(AttentionCases.All.Count, AttentionCases.All.Select(c => c.Name).Distinct().Count());

    private static void AssertPasses(AttentionCase c, ScalarType dtype)
    {
        var result = CaseCheck.Run(c, CaseProfile.Small, dtype, CPU);
        Assert.True(result.NativeRight || dtype != ScalarType.Float32, "native itself is wrong on the CPU: " + CaseCheck.Describe(result));
        Assert.True(result.Passed, CaseCheck.Describe(result));
    }
}
