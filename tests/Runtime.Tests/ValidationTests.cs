using System;
using System.Collections.Generic;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// Every bad input throws before any work, and its message is clear (issue 8): it names the argument, gives the
/// expected and the actual shapes or values, and says what to change. One row per check of the runtime.
/// </summary>
public class ValidationTests
{
    private static readonly ChunkedAttentionOptions Small = new() { ChunkSize = 2, Devices = AttentionDevices.All };

    private static Tensor R(params long[] shape) => randn(shape);

    /// <summary>On another device than the CPU query: only CPU exists here, and a "meta" tensor costs no memory.</summary>
    private static Tensor Meta(params long[] shape) => randn(shape, device: new Device(TorchSharp.DeviceType.META));

    /// <summary>
    /// A bad call and what its exception must say: <paramref name="Argument"/> is the ParamName, and every one of
    /// <paramref name="Mentions"/> (shapes or values, and the remedy) appears in the message.
    /// </summary>
    private sealed record BadCall(string Argument, Tensor Query, Tensor Key, Tensor Value, params string[] Mentions)
    {
        public Tensor? Mask { get; init; }
        public double P { get; init; }
        public double? Scale { get; init; }
        public bool Gqa { get; init; }
        public ChunkedAttentionOptions Options { get; init; } = Small;
        public Type Exception { get; init; } = typeof(ArgumentException);
    }

    private static readonly Dictionary<string, Func<BadCall>> BadCalls = new()
    {
        ["query is null"] = () => new("query", null!, R(3, 4), R(3, 2), "query", "(N..., L, E)", "null", "Pass a query tensor")
        {
            Exception = typeof(ArgumentNullException),
        },
        ["key is null"] = () => new("key", R(2, 4), null!, R(3, 2), "key", "(N..., S, E)", "null", "Pass a key tensor")
        {
            Exception = typeof(ArgumentNullException),
        },
        ["value is null"] = () => new("value", R(2, 4), R(3, 4), null!, "value", "(N..., S, Ev)", "null", "Pass a value tensor")
        {
            Exception = typeof(ArgumentNullException),
        },
        ["query of rank 1"] = () => new("query", R(4), R(3, 4), R(3, 4), "query", "at least 2 dimensions", "[4]", "unsqueeze"),
        ["key of rank 1"] = () => new("key", R(2, 4), R(4), R(3, 4), "key", "at least 2 dimensions", "(N..., S, E)", "[4]", "unsqueeze"),
        ["value of rank 1"] = () => new("value", R(2, 4), R(3, 4), R(3), "value", "at least 2 dimensions", "[3]", "unsqueeze"),
        ["query not floating"] = () => new("query", ones(new long[] { 2, 4 }, ScalarType.Int32), ones(new long[] { 3, 4 }, ScalarType.Int32),
            ones(new long[] { 3, 2 }, ScalarType.Int32), "query", "floating-point", "Int32", "[2, 4]", "query.to(ScalarType.Float32)"),
        ["key dtype differs"] = () => new("key", R(2, 4), R(3, 4).to(ScalarType.Float64), R(3, 2),
            "same dtype", "query is Float32", "key is Float64", "[3, 4]", "Convert key to Float32"),
        ["value dtype differs"] = () => new("value", R(2, 4), R(3, 4), R(3, 2).to(ScalarType.Float16),
            "same dtype", "value is Float16", "[3, 2]", "Convert value to Float32"),
        ["key on another device"] = () => new("key", R(2, 4), Meta(3, 4), R(3, 2),
            "key", "query's device cpu", "meta", "[3, 4]", ".to(query.device)"),
        ["value on another device"] = () => new("value", R(2, 4), R(3, 4), Meta(3, 2),
            "value", "query's device cpu", "meta", "[3, 2]", ".to(query.device)"),
        ["head dims differ"] = () => new("key", R(2, 3, 5, 4), R(2, 3, 6, 8), R(2, 3, 6, 2),
            "E = 4", "E = 8", "[2, 3, 5, 4]", "[2, 3, 6, 8]", "Project key to the query's head dim"),
        ["key and value lengths differ"] = () => new("value", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 7, 2),
            "S = 6", "S = 7", "[2, 3, 7, 2]", "Pass the key and value of the same tokens"),
        ["key leading dims do not broadcast"] = () => new("key", R(2, 3, 5, 4), R(3, 3, 6, 4), R(3, 3, 6, 2),
            "[3, 3]", "[2, 3]", "[2, 3, 5, 4]", "[3, 3, 6, 4]", "broadcast", "Make each of key's leading dims", "equal to query's or 1"),
        ["fewer key heads without gqa"] = () => new("key", R(2, 6, 5, 4), R(2, 2, 6, 4), R(2, 2, 6, 2),
            "[2, 6, 5, 4]", "[2, 2, 6, 4]", "broadcast", "enable_gqa: true"),
        ["value leading dims do not broadcast"] = () => new("value", R(2, 3, 5, 4), R(2, 3, 6, 4), R(4, 3, 6, 2),
            "[4, 3]", "[2, 3]", "[4, 3, 6, 2]", "broadcast", "Make each of value's leading dims", "equal to those of query and key, or 1"),
        ["gqa without a heads dim"] = () => new("query", R(5, 4), R(6, 4), R(6, 2),
            "enable_gqa", "heads dim", "at least 3 dimensions", "[5, 4]", "enable_gqa: false") { Gqa = true },
        ["key heads do not divide query heads under gqa"] = () => new("key", R(2, 6, 5, 4), R(2, 4, 6, 4), R(2, 4, 6, 2),
            "multiple", "Hq = 6", "key has 4 heads", "[2, 4, 6, 4]", "key head count that divides 6") { Gqa = true },
        ["value heads do not divide query heads under gqa"] = () => new("value", R(2, 6, 5, 4), R(2, 3, 6, 4), R(2, 4, 6, 2),
            "multiple", "Hq = 6", "value has 4 heads", "[2, 4, 6, 2]", "value head count that divides 6") { Gqa = true },
        ["mask of rank 1"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "attn_mask", "at least 2 dimensions", "(L, S) = (5, 6)", "[6]", "Use shape (L, S), (1, S)", "[2, 3, 5, 6]") { Mask = zeros(6) },
        ["mask of an integer dtype"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "bool", "Float32", "but is Int32", "[5, 6]", "mask.to(ScalarType.Bool)") { Mask = ones(new long[] { 5, 6 }, ScalarType.Int32) },
        ["mask of Float64 for a Float32 query"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "query's dtype Float32", "but is Float64", "mask.to(Float32)") { Mask = zeros(new long[] { 5, 6 }, ScalarType.Float64) },
        ["mask on another device"] = () => new("attn_mask", R(2, 4), R(3, 4), R(3, 2),
            "attn_mask", "query's device cpu", "meta", "[2, 3]", ".to(query.device)") { Mask = Meta(2, 3).gt(0) },
        ["mask heads do not broadcast"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "[2, 4, 5, 6]", "[2, 3, 5, 6]", "broadcast", "Reshape the mask", "equals the scores' dim or is 1")
        {
            Mask = ones(new long[] { 2, 4, 5, 6 }, ScalarType.Bool),
        },
        ["mask keys do not broadcast"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "[5, 7]", "[2, 3, 5, 6]", "Reshape the mask", "(L, S) = (5, 6)") { Mask = zeros(5, 7) },
        ["mask of more dims than the scores"] = () => new("attn_mask", R(2, 3, 5, 4), R(2, 3, 6, 4), R(2, 3, 6, 2),
            "[1, 2, 3, 5, 6]", "[2, 3, 5, 6]", "no more dims than the scores") { Mask = zeros(new long[] { 1, 2, 3, 5, 6 }) },
        ["p below 0"] = () => DropoutOf(-0.1, "but is -0.1"),
        ["p of 1"] = () => DropoutOf(1.0, "but is 1."),
        ["p of NaN"] = () => DropoutOf(double.NaN, "but is NaN"),
        ["scale infinite"] = () => new("scale", R(2, 4), R(3, 4), R(3, 2),
            "scale must be a finite number", "but is Infinity", "Pass null for the default 1/sqrt(E)")
        {
            Scale = double.PositiveInfinity,
            Exception = typeof(ArgumentOutOfRangeException),
        },
        ["options: ChunkSize negative"] = () => OptionsOf(new() { ChunkSize = -5 }, "options.ChunkSize must be >= 0", "0 = auto", "but is -5", "Use 0, or a positive value"),
        ["options: KeyChunkSize negative"] = () => OptionsOf(new() { KeyChunkSize = -1 }, "options.KeyChunkSize must be >= 0", "but is -1", "Use 0, or a positive block size"),
        ["options: MaxScoreElements negative"] = () => OptionsOf(new() { MaxScoreElements = -3 }, "options.MaxScoreElements must be >= 0", "but is -3", "Use 0, or a positive cap"),
        ["options: Devices None"] = () => OptionsOf(new() { Devices = AttentionDevices.None }, "options.Devices must select at least one device", "but is None", "CHUNKED_ATTENTION=off"),
    };

    private static BadCall DropoutOf(double p, string actual) =>
        new("p", R(2, 4), R(3, 4), R(3, 2), "p (dropout probability) must be in [0, 1)", actual, "Use 0 for no dropout")
        {
            P = p,
            Exception = typeof(ArgumentOutOfRangeException),
        };

    private static BadCall OptionsOf(ChunkedAttentionOptions options, params string[] mentions) =>
        new("options", R(2, 4), R(3, 4), R(3, 2), mentions)
        {
            Options = options,
            Exception = typeof(ArgumentOutOfRangeException),
        };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in BadCalls.Keys)
        {
            data.Add("Chunked", name);
            data.Add("Attention", name);
            if (!name.StartsWith("options: ", StringComparison.Ordinal))
            {
                data.Add("Native", name); // takes no options
            }
        }

        return data;
    }

    private static Tensor Call(string entry, BadCall bad) => entry switch
    {
        "Chunked" => ChunkedSdpa.Chunked(bad.Query, bad.Key, bad.Value, bad.Mask, bad.P, false, bad.Scale, bad.Gqa, bad.Options),
        "Native" => ChunkedSdpa.Native(bad.Query, bad.Key, bad.Value, bad.Mask, bad.P, false, bad.Scale, bad.Gqa),
        _ => ChunkedSdpa.Attention(bad.Query, bad.Key, bad.Value, bad.Mask, bad.P, false, bad.Scale, bad.Gqa, bad.Options),
    };

    private static void AssertClear(Exception e, string argument, IEnumerable<string> mentions)
    {
        Assert.Equal(argument, Assert.IsAssignableFrom<ArgumentException>(e).ParamName);
        foreach (var part in mentions)
        {
            Assert.Contains(part, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInputThrowsAClearMessageBeforeAnyWork(string entry, string badCall)
    {
        using var scope = NewDisposeScope();
        var bad = BadCalls[badCall]();
        var liveBefore = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        var e = Assert.Throws(bad.Exception, () => Call(entry, bad));

        AssertClear(e, bad.Argument, bad.Mentions);
        Assert.Equal(liveBefore, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    public static TheoryData<string> PlanChecks() => new()
    {
        "query is null", "key is null", "query of rank 1", "key of rank 1", "options: ChunkSize negative", "options: KeyChunkSize negative",
        "options: MaxScoreElements negative", "options: Devices None",
    };

    [Theory]
    [MemberData(nameof(PlanChecks))]
    public void PlanAndShouldChunkCheckQueryKeyAndOptionsAlike(string badCall)
    {
        using var scope = NewDisposeScope();
        var bad = BadCalls[badCall]();
        AssertClear(Assert.Throws(bad.Exception, () => ChunkedSdpa.Plan(bad.Query, bad.Key, bad.Options)), bad.Argument, bad.Mentions);
        AssertClear(Assert.Throws(bad.Exception, () => ChunkedSdpa.ShouldChunk(bad.Query, bad.Key, bad.Options)), bad.Argument, bad.Mentions);
    }

    public static TheoryData<string> DeviceGuardChecks() => new()
    {
        "query is null", "options: ChunkSize negative", "options: KeyChunkSize negative", "options: MaxScoreElements negative", "options: Devices None",
    };

    [Theory]
    [MemberData(nameof(DeviceGuardChecks))]
    public void IsChunkingDeviceChecksQueryAndOptionsLikeTheOtherEntries(string badCall)
    {
        using var scope = NewDisposeScope();
        var bad = BadCalls[badCall]();
        AssertClear(Assert.Throws(bad.Exception, () => ChunkedSdpa.IsChunkingDevice(bad.Query, bad.Options)), bad.Argument, bad.Mentions);
    }
}
