using System;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>Every bad input throws before any work, naming the argument, the shapes or values, and the fix.</summary>
public class ValidationTests
{
    private static readonly ChunkedAttentionOptions Small = new() { ChunkSize = 2, Devices = AttentionDevices.All };

    private static Tensor Q(params long[] shape) => randn(shape);

    private delegate Tensor Call(Tensor q, Tensor k, Tensor v, Tensor? mask, double p, bool causal, double? scale, bool gqa,
        ChunkedAttentionOptions? options);

    public static TheoryData<string> Entries() => new() { "Chunked", "Attention" };

    private static Call Entry(string name) => name == "Chunked"
        ? (q, k, v, m, p, c, s, g, o) => ChunkedSdpa.Chunked(q, k, v, m, p, c, s, g, o)
        : (q, k, v, m, p, c, s, g, o) => ChunkedSdpa.Attention(q, k, v, m, p, c, s, g, o);

    private static TException Throws<TException>(string entry, Tensor q, Tensor k, Tensor v, Tensor? mask = null,
        double p = 0, bool causal = false, double? scale = null, bool gqa = false, ChunkedAttentionOptions? options = null)
        where TException : Exception =>
        Assert.Throws<TException>(() => Entry(entry)(q, k, v, mask, p, causal, scale, gqa, options ?? Small));

    private static void AssertMentions(Exception e, params string[] parts)
    {
        foreach (var part in parts)
        {
            Assert.Contains(part, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void RankBelowTwo(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(4), Q(3, 4), Q(3, 4));
        Assert.Equal("query", e.ParamName);
        AssertMentions(e, "query", "at least 2 dimensions", "[4]");

        e = Throws<ArgumentException>(entry, Q(2, 4), Q(4), Q(3, 4));
        Assert.Equal("key", e.ParamName);
        e = Throws<ArgumentException>(entry, Q(2, 4), Q(3, 4), Q(3));
        Assert.Equal("value", e.ParamName);
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void LeadingDimsThatDoNotBroadcast(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 3, 5, 4), Q(3, 3, 6, 4), Q(3, 3, 6, 2));
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "[2, 3, 5, 4]", "[3, 3, 6, 4]", "broadcast");

        e = Throws<ArgumentException>(entry, Q(2, 3, 5, 4), Q(2, 3, 6, 4), Q(4, 3, 6, 2));
        Assert.Equal("value", e.ParamName);
        AssertMentions(e, "[4, 3, 6, 2]");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void HeadDimOfQueryAndKeyDiffer(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 3, 5, 4), Q(2, 3, 6, 8), Q(2, 3, 6, 2));
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "E = 4", "E = 8", "[2, 3, 5, 4]", "[2, 3, 6, 8]");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void KeyAndValueLengthsDiffer(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 3, 5, 4), Q(2, 3, 6, 4), Q(2, 3, 7, 2));
        Assert.Equal("value", e.ParamName);
        AssertMentions(e, "S = 6", "S = 7", "[2, 3, 7, 2]");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void MaskThatDoesNotBroadcast(string entry)
    {
        var (q, k, v) = (Q(2, 3, 5, 4), Q(2, 3, 6, 4), Q(2, 3, 6, 2));
        var e = Throws<ArgumentException>(entry, q, k, v, ones(new long[] { 2, 4, 5, 6 }, ScalarType.Bool));
        Assert.Equal("attn_mask", e.ParamName);
        AssertMentions(e, "[2, 4, 5, 6]", "[2, 3, 5, 6]", "broadcast");

        e = Throws<ArgumentException>(entry, q, k, v, zeros(5, 7));
        AssertMentions(e, "[5, 7]", "[2, 3, 5, 6]");
        e = Throws<ArgumentException>(entry, q, k, v, zeros(new long[] { 1, 2, 3, 5, 6 }));
        AssertMentions(e, "[1, 2, 3, 5, 6]", "more dims");
        e = Throws<ArgumentException>(entry, q, k, v, zeros(6));
        Assert.Equal("attn_mask", e.ParamName);
        AssertMentions(e, "at least 2 dimensions", "[6]");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void MaskDtypeOrDeviceNativeRejects(string entry)
    {
        var (q, k, v) = (Q(2, 3, 5, 4), Q(2, 3, 6, 4), Q(2, 3, 6, 2));
        var e = Throws<ArgumentException>(entry, q, k, v, ones(new long[] { 5, 6 }, ScalarType.Int32));
        Assert.Equal("attn_mask", e.ParamName);
        AssertMentions(e, "Int32", "Bool");
        e = Throws<ArgumentException>(entry, q, k, v, zeros(new long[] { 5, 6 }, ScalarType.Float64));
        AssertMentions(e, "Float64");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void HeadsNotAMultipleUnderGqa(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 6, 5, 4), Q(2, 4, 6, 4), Q(2, 4, 6, 2), gqa: true);
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "Hq = 6", "4 heads", "multiple");

        e = Throws<ArgumentException>(entry, Q(2, 6, 5, 4), Q(2, 3, 6, 4), Q(2, 4, 6, 2), gqa: true);
        Assert.Equal("value", e.ParamName);

        e = Throws<ArgumentException>(entry, Q(5, 4), Q(6, 4), Q(6, 2), gqa: true);
        AssertMentions(e, "heads dim", "enable_gqa");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void HeadsDifferWithoutGqa(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 6, 5, 4), Q(2, 2, 6, 4), Q(2, 2, 6, 2));
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "[2, 6, 5, 4]", "[2, 2, 6, 4]", "enable_gqa: true");
    }

    [Theory]
    [InlineData("Chunked", -0.1)]
    [InlineData("Chunked", 1.0)]
    [InlineData("Attention", 1.5)]
    [InlineData("Attention", double.NaN)]
    public void DropoutOutsideZeroOne(string entry, double p)
    {
        var e = Throws<ArgumentOutOfRangeException>(entry, Q(2, 4), Q(3, 4), Q(3, 2), p: p);
        Assert.Equal("p", e.ParamName);
        AssertMentions(e, "[0, 1)");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void ScaleNotFinite(string entry)
    {
        var e = Throws<ArgumentOutOfRangeException>(entry, Q(2, 4), Q(3, 4), Q(3, 2), scale: double.PositiveInfinity);
        Assert.Equal("scale", e.ParamName);
    }

    [Theory]
    [InlineData(0, 0, 0, "ChunkSize", "0")]
    [InlineData(-5, 0, 0, "ChunkSize", "-5")]
    [InlineData(4, -1, 0, "KeyChunkSize", "-1")]
    [InlineData(4, 0, -3, "MaxScoreElements", "-3")]
    public void InvalidOptions(int chunk, int keyChunk, long cap, string setting, string value)
    {
        var options = new ChunkedAttentionOptions { ChunkSize = chunk, KeyChunkSize = keyChunk, MaxScoreElements = cap };
        var (q, k, v) = (Q(2, 4), Q(3, 4), Q(3, 2));
        foreach (var entry in new[] { "Chunked", "Attention" })
        {
            var e = Throws<ArgumentOutOfRangeException>(entry, q, k, v, options: options);
            Assert.Equal("options", e.ParamName);
            AssertMentions(e, "options." + setting, value);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedSdpa.Plan(q, k, options));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedSdpa.ShouldChunk(q, k, options));
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void NonFloatingQuery(string entry)
    {
        var q = ones(new long[] { 2, 4 }, ScalarType.Int32);
        var e = Throws<ArgumentException>(entry, q, q, q);
        Assert.Equal("query", e.ParamName);
        AssertMentions(e, "floating-point", "Int32", "[2, 4]");
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void DtypesDiffer(string entry)
    {
        var e = Throws<ArgumentException>(entry, Q(2, 4), Q(3, 4).to(ScalarType.Float64), Q(3, 2));
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "Float32", "Float64", "same dtype");
        e = Throws<ArgumentException>(entry, Q(2, 4), Q(3, 4), Q(3, 2).to(ScalarType.Float16));
        Assert.Equal("value", e.ParamName);
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void TensorsOnDifferentDevices(string entry)
    {
        // Only CPU exists here; a "meta" tensor is on another device and costs no memory.
        var meta = randn(new long[] { 3, 4 }, device: new Device(TorchSharp.DeviceType.META));
        var e = Throws<ArgumentException>(entry, Q(2, 4), meta, Q(3, 2));
        Assert.Equal("key", e.ParamName);
        AssertMentions(e, "device", "cpu", "meta");
        e = Throws<ArgumentException>(entry, Q(2, 4), Q(3, 4), Q(3, 2), randn(new long[] { 2, 3 }, device: new Device(TorchSharp.DeviceType.META)).gt(0));
        Assert.Equal("attn_mask", e.ParamName);
    }

    [Fact]
    public void ChecksHappenBeforeAnyWork()
    {
        // A bad p with otherwise valid inputs: nothing is computed, no tensor is left behind.
        var (q, k, v) = (Q(2, 4), Q(3, 4), Q(3, 2));
        var before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedSdpa.Chunked(q, k, v, p: 2, options: Small));
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void PlanAndShouldChunkRejectLowRank()
    {
        var e = Assert.Throws<ArgumentException>(() => ChunkedSdpa.Plan(Q(4), Q(3, 4)));
        Assert.Equal("query", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => ChunkedSdpa.ShouldChunk(Q(2, 4), Q(4)));
        Assert.Equal("key", e.ParamName);
    }
}
