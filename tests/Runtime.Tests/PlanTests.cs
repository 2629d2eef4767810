using System;
using System.Collections.Generic;
using System.Linq;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// <see cref="ChunkedSdpa.Plan"/>: the sizing rules, and that <see cref="ChunkedSdpa.Chunked"/> does exactly
/// what the plan says (steps counted through the internal kernel seam).
/// </summary>
public class PlanTests
{
    /// <summary>Shapes without memory: the plan only reads sizes.</summary>
    private static Tensor Meta(params long[] shape) => empty(shape, device: new Device(TorchSharp.DeviceType.META));

    private static Tensor Meta(ScalarType dtype, params long[] shape) => empty(shape, dtype, new Device(TorchSharp.DeviceType.META));

    [Fact]
    public void DefaultIsAutoWhichDoesNotChunkWhereTheWholeFits()
    {
        Assert.Equal(0, ChunkedAttentionOptions.Default.ChunkSize);
        Assert.Equal(0, new ChunkedAttentionAttribute().ChunkSize);
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 4096, 64), Meta(2, 8, 4096, 64));
        Assert.Equal(new ChunkPlan(false, 4096, 4096, 1, 1, 16L * 4096 * 4096), plan);
    }

    [Fact]
    public void FixedChunkSizeOnTheSelfAttentionBenchmarkShape()
    {
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 4096, 64), Meta(2, 8, 4096, 64), new ChunkedAttentionOptions { ChunkSize = 1024 });
        Assert.Equal(new ChunkPlan(true, 1024, 4096, 4, 1, 16L * 1024 * 4096), plan);
    }

    [Theory]
    [InlineData(4096, 3000, 2, 2048)] // two of 2048, not 3000 + 1096
    [InlineData(4096, 4096, 1, 4096)]
    [InlineData(4097, 4096, 2, 2049)]
    [InlineData(10, 3, 4, 3)]
    [InlineData(9, 4, 3, 3)]
    [InlineData(4096, 1, 4096, 1)]
    public void AutoSplitsIntoTheFewestEqualChunksWithinTheCap(long length, long rowsThatFit, long chunks, long rows)
    {
        // One score batch and one key: the cap is the number of rows that fit.
        var options = new ChunkedAttentionOptions { ChunkSize = 0, MaxScoreElements = rowsThatFit };
        var plan = ChunkedSdpa.Plan(Meta(1, 1, length, 8), Meta(1, 1, 1, 8), options);
        Assert.Equal(chunks, plan.QueryChunks);
        Assert.Equal(rows, plan.QueryRows);
        Assert.True(plan.MaxScoreElements <= rowsThatFit);
        Assert.True((chunks - 1) * rows < length && chunks * rows >= length);
    }

    [Theory]
    [InlineData(ScalarType.Float16, 2, 8192)]   // 2^31 elements per step: two chunks of 8192 rows
    [InlineData(ScalarType.BFloat16, 2, 8192)]
    [InlineData(ScalarType.Float32, 4, 4096)]   // 2^32 bytes: 2^30 elements
    [InlineData(ScalarType.Float64, 8, 2048)]
    public void AutoWithoutACapUsesMpsLimitsInTheQueryDtype(ScalarType dtype, long chunks, long rows)
    {
        // SD 1.5 at 1024 px: B2 H8 L=S=16384 holds 2^32 scores.
        var plan = ChunkedSdpa.Plan(Meta(dtype, 2, 8, 16384, 64), Meta(dtype, 2, 8, 16384, 64), new ChunkedAttentionOptions { ChunkSize = 0 });
        Assert.Equal(chunks, plan.QueryChunks);
        Assert.Equal(rows, plan.QueryRows);
        var elementBytes = dtype switch { ScalarType.Float16 or ScalarType.BFloat16 => 2, ScalarType.Float64 => 8, _ => 4 };
        Assert.True(plan.MaxScoreElements <= 1L << 31);
        Assert.True(plan.MaxScoreElements * elementBytes <= 1L << 32);
    }

    [Fact]
    public void AutoKeepsAnExplicitKeyBlockAndTakesAllRowsThatFit()
    {
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 4096, 64), Meta(2, 8, 4096, 64), new ChunkedAttentionOptions { ChunkSize = 0, KeyChunkSize = 1024 });
        Assert.Equal(new ChunkPlan(true, 4096, 1024, 1, 4, 16L * 4096 * 1024), plan);
    }

    [Fact]
    public void AutoBelowOneRowBlocksTheKeysInEqualSquareishSteps()
    {
        // B*H = 4, S = 10000: one row holds 40000 scores, over the cap of 4 * 900: steps of at most 30 x 30, evened out.
        var plan = ChunkedSdpa.Plan(Meta(1, 4, 100, 8), Meta(1, 4, 10000, 8), new ChunkedAttentionOptions { ChunkSize = 0, MaxScoreElements = 4 * 900 });
        Assert.Equal(4, plan.QueryChunks);
        Assert.Equal(25, plan.QueryRows);
        Assert.Equal(334, plan.KeyBlocks);
        Assert.Equal(30, plan.KeyRows);
        Assert.True(plan.MaxScoreElements <= 4 * 900);
    }

    [Fact]
    public void ShortQueryIsOneChunk()
    {
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 77, 64), Meta(2, 8, 4096, 64));
        Assert.Equal(new ChunkPlan(false, 77, 4096, 1, 1, 16L * 77 * 4096), plan);
    }

    [Fact]
    public void CapLowersTheQueryChunk()
    {
        var options = new ChunkedAttentionOptions { MaxScoreElements = 16L * 4096 * 100 };
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 4096, 64), Meta(2, 8, 4096, 64), options);
        Assert.Equal(100, plan.QueryRows);
        Assert.Equal(41, plan.QueryChunks);
        Assert.Equal(1, plan.KeyBlocks);
        Assert.True(plan.MaxScoreElements <= options.MaxScoreElements);
    }

    [Fact]
    public void CapBelowOneRowPicksASquareishKeyBlock()
    {
        // B*H = 4, S = 16384: one row holds 65536 scores, over the cap of 4*64*64 = 4096 per head: 64 x 64 steps.
        var options = new ChunkedAttentionOptions { MaxScoreElements = 4 * 64 * 64 };
        var plan = ChunkedSdpa.Plan(Meta(1, 4, 16384, 64), Meta(1, 4, 16384, 64), options);
        Assert.Equal(new ChunkPlan(true, 64, 64, 256, 256, 4 * 64 * 64), plan);

        // A single row would fit, so the query chunk alone is lowered.
        var rowsOnly = ChunkedSdpa.Plan(Meta(1, 4, 16384, 64), Meta(1, 4, 16384, 64), new ChunkedAttentionOptions { MaxScoreElements = 4L * 16384 * 3 });
        Assert.Equal(3, rowsOnly.QueryRows);
        Assert.Equal(1, rowsOnly.KeyBlocks);
    }

    [Fact]
    public void CapWinsOverAnExplicitKeyBlock()
    {
        var options = new ChunkedAttentionOptions { KeyChunkSize = 1000, MaxScoreElements = 4 * 100 };
        var plan = ChunkedSdpa.Plan(Meta(1, 4, 64, 8), Meta(1, 4, 5000, 8), options);
        Assert.Equal(1, plan.QueryRows);
        Assert.Equal(100, plan.KeyRows);
        Assert.Equal(50, plan.KeyBlocks);
        Assert.Equal(400, plan.MaxScoreElements);
    }

    [Fact]
    public void NeverBelowOne()
    {
        var plan = ChunkedSdpa.Plan(Meta(4, 8, 10, 8), Meta(4, 8, 10, 8), new ChunkedAttentionOptions { MaxScoreElements = 5 });
        Assert.Equal(new ChunkPlan(true, 1, 1, 10, 10, 32), plan);
    }

    [Fact]
    public void HugeSettingsDoNotOverflow()
    {
        var options = new ChunkedAttentionOptions { ChunkSize = int.MaxValue, KeyChunkSize = int.MaxValue, MaxScoreElements = long.MaxValue };
        var plan = ChunkedSdpa.Plan(Meta(1 << 20, 1 << 10, 1 << 20, 8), Meta(1 << 20, 1 << 10, 1 << 20, 8), options);
        Assert.Equal(1 << 20, plan.QueryRows);
        Assert.Equal(1, plan.QueryChunks);
        Assert.Equal(long.MaxValue, plan.MaxScoreElements); // 2^70 saturates instead of wrapping negative.

        var capped = ChunkedSdpa.Plan(Meta(1 << 20, 1 << 10, 1 << 20, 8), Meta(1 << 20, 1 << 10, 1 << 20, 8),
            new ChunkedAttentionOptions { ChunkSize = int.MaxValue, MaxScoreElements = 1L << 62 });
        Assert.True(capped.MaxScoreElements <= 1L << 62);
        Assert.True(capped.QueryRows >= 1 && capped.KeyRows >= 1);
    }

    [Fact]
    public void ZeroLengthQueryHasNoChunks()
    {
        var plan = ChunkedSdpa.Plan(Meta(2, 3, 0, 4), Meta(2, 3, 9, 4));
        Assert.Equal(new ChunkPlan(false, 0, 9, 0, 1, 0), plan);
    }

    [Fact]
    public void GqaAndBroadcastCountTheQueryHeads()
    {
        var plan = ChunkedSdpa.Plan(Meta(2, 8, 10, 4), Meta(1, 2, 6, 4), new ChunkedAttentionOptions { ChunkSize = 4 });
        Assert.Equal(16L * 4 * 6, plan.MaxScoreElements);
    }

    public static IEnumerable<object[]> Configurations()
    {
        // chunk, key chunk, cap, causal, with mask
        yield return new object[] { 3, 0, 0L, false, false };
        yield return new object[] { 3, 0, 0L, true, true };
        yield return new object[] { 100, 4, 0L, false, true };
        yield return new object[] { 2, 4, 0L, true, false };
        yield return new object[] { 1, 1, 0L, false, false };
        yield return new object[] { 1024, 0, 6L * 9 * 3, false, false };
        yield return new object[] { 1024, 0, 6L * 20, false, true };
        yield return new object[] { 1024, 0, 6L * 20, true, true };
        yield return new object[] { 1024, 5, 6L * 10, true, false };
        yield return new object[] { 4, 0, 3L, false, false };
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void ChunkedDoesWhatThePlanSays(int chunk, int keyChunk, long cap, bool causal, bool withMask)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(200, l: 8, s: 9);
        var mask = withMask ? Reference.Randn(Reference.Seeded(203), 2, 1, 8, 9) : null;
        var options = new ChunkedAttentionOptions { ChunkSize = chunk, KeyChunkSize = keyChunk, MaxScoreElements = cap };
        var plan = ChunkedSdpa.Plan(q, k, options);

        var recorder = new StepRecorder();
        var result = recorder.Chunked(q, k, v, options, mask, causal);
        Reference.AssertClose(Reference.Native(q, k, v, mask, causal: causal), result);

        var steps = recorder.Steps;
        Assert.All(steps, s => Assert.True(s.QueryRows <= plan.QueryRows && s.KeyRows <= plan.KeyRows));
        Assert.Equal(plan.QueryChunks, steps.Select(s => s.QueryStart).Distinct().Count());
        Assert.True(recorder.LargestScoreBlock <= plan.MaxScoreElements);
        if (!causal)
        {
            // Without causal skipping the plan is exact.
            Assert.Equal(plan.QueryChunks * plan.KeyBlocks, steps.Length);
            Assert.Equal(plan.MaxScoreElements, recorder.LargestScoreBlock);
        }
        else
        {
            // Causal: never a step whose keys all lie above the diagonal.
            Assert.All(steps, s => Assert.True(s.KeyStart <= s.QueryStart + s.QueryRows - 1));
            Assert.True(steps.Length <= plan.QueryChunks * plan.KeyBlocks);
        }

        if (cap > 0)
        {
            Assert.True(recorder.LargestScoreBlock <= Math.Max(cap, 6));
        }
    }

    [Fact]
    public void CausalSkipsKeyBlocksAboveTheDiagonal()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(201, l: 16, s: 16, hq: 1, batch: 1, ev: 4);
        var options = new ChunkedAttentionOptions { ChunkSize = 4, KeyChunkSize = 4 };
        var recorder = new StepRecorder();
        var result = recorder.Chunked(q, k, v, options, causal: true);
        Reference.AssertClose(Reference.Native(q, k, v, causal: true), result);
        // 4 query chunks see 1, 2, 3, 4 key blocks: 10 of 16 steps.
        Assert.Equal(10, recorder.Count);
    }

    [Fact]
    public void CausalQueryChunksOnlySeeKeysUpToTheirLastRow()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(202, l: 12, s: 12, hq: 2, batch: 1, ev: 4);
        var recorder = new StepRecorder();
        recorder.Chunked(q, k, v, new ChunkedAttentionOptions { ChunkSize = 4 }, causal: true);
        Assert.Equal(new long[] { 4, 8, 12 }, recorder.Steps.Select(s => s.KeyRows).ToArray());
    }
}
