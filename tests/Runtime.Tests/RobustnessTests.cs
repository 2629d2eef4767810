using System;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Runtime.Tests.Support;
using static ChunkedAttention.Runtime.Tests.Support.SmallChunks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>Edge inputs (NaN/Inf, empty dims, huge settings) and thread safety.</summary>
public class RobustnessTests
{
    private static AttentionInputs Inputs(long seed, long l = 7, long s = 9) => AttentionInputs.Random(seed, l, s);

    /// <summary>Same NaN and infinity positions, same values elsewhere.</summary>
    private static void AssertSameIncludingNaN(Tensor expected, Tensor actual)
    {
        Assert.True(expected.isnan().eq(actual.isnan()).all().item<bool>(), "NaN positions differ from native");
        Assert.True(expected.isposinf().eq(actual.isposinf()).all().item<bool>(), "+inf positions differ from native");
        Assert.True(expected.isneginf().eq(actual.isneginf()).all().item<bool>(), "-inf positions differ from native");
        var finite = expected.isfinite();
        Reference.AssertClose(expected.masked_select(finite), actual.masked_select(finite));
    }

    /// <summary>Writes NaN into one element of the named input, or +inf into a key and -inf into a value.</summary>
    private static void Poison(string poison, Tensor q, Tensor k, Tensor v)
    {
        switch (poison)
        {
            case "NaN in query": q[0, 1, 2, 3] = tensor(float.NaN); break;
            case "NaN in key": k[0, 1, 2, 3] = tensor(float.NaN); break;
            case "NaN in value": v[0, 1, 2, 3] = tensor(float.NaN); break;
            case "infinities in key and value":
                k[1, 0, 4, 0] = tensor(float.PositiveInfinity);
                v[0, 2, 1, 1] = tensor(float.NegativeInfinity);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(poison), poison, "unknown poison");
        }
    }

    [Theory]
    [InlineData("NaN in value", 0)]
    [InlineData("NaN in key", 0)]
    [InlineData("NaN in query", 0)]
    [InlineData("infinities in key and value", 0)]
    [InlineData("NaN in value", 4)]
    [InlineData("NaN in key", 4)]
    [InlineData("infinities in key and value", 4)]
    public void NonFiniteInputsPropagateAsNative(string poison, int keyChunk)
    {
        NonFiniteInputs(poison, keyChunk);
    }

    [Theory]
    [InlineData("NaN in value")]
    [InlineData("NaN in key")]
    [InlineData("infinities in key and value")]
    public void NonFiniteInputsThroughTheTwoPassKeyBlockKernel(string poison)
    {
        using var hooks = ChunkedAttention.Kernels.KernelHooks.Override(new ChunkedAttention.Kernels.KernelHooks { KeyBlockPasses = 2 });
        NonFiniteInputs(poison, keyChunk: 4);
    }

    private static void NonFiniteInputs(string poison, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(400);
        Poison(poison, q, k, v);
        AssertSameIncludingNaN(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
        var mask = Reference.Randn(Reference.Seeded(401), 7, 9);
        AssertSameIncludingNaN(Reference.Native(q, k, v, mask), Chunked(q, k, v, mask, keyChunk: keyChunk));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void NaNInAQueryRowStaysInThatRow(int keyChunk)
    {
        // Native's fused CPU kernel turns a NaN query row into zeros, its math kernel into NaN; either way the
        // other rows are untouched. The key-block kernel gives NaN (it never hides a NaN).
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(402);
        q[0, 1, 2, 3] = tensor(float.NaN);
        var expected = Reference.Native(q, k, v, causal: true);
        var actual = Chunked(q, k, v, causal: true, keyChunk: keyChunk);
        var row = actual[0, 1, 2];
        Assert.True(row.isnan().all().item<bool>() || row.eq(0).all().item<bool>());
        var others = ones(actual.shape, ScalarType.Bool);
        others[0, 1, 2] = tensor(false);
        Reference.AssertClose(expected.masked_select(others), actual.masked_select(others));
    }

    [Theory]
    [InlineData(0, 9, false, 0)]
    [InlineData(0, 9, true, 0)]
    [InlineData(0, 9, false, 4)]
    [InlineData(0, 9, true, 4)]
    [InlineData(7, 0, false, 0)]
    [InlineData(7, 0, true, 0)]
    [InlineData(7, 0, false, 4)]
    [InlineData(7, 0, true, 4)]
    public void ZeroLengthQueryOrKeysAsNative(long l, long s, bool causal, int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(405, l, s);
        var expected = Reference.Native(q, k, v, causal: causal);
        var actual = Chunked(q, k, v, causal: causal, keyChunk: keyChunk);
        Assert.Equal(new long[] { 2, 3, l, 5 }, actual.shape);
        Reference.AssertClose(expected, actual);
        if (s == 0)
        {
            // No key to attend: zeros, as native gives.
            Assert.Equal(0f, actual.abs().max().item<float>());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void ZeroHeadDimAsNative(int keyChunk)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(407, e: 0);
        Reference.AssertClose(Reference.Native(q, k, v), Chunked(q, k, v, keyChunk: keyChunk));
        Reference.AssertClose(Reference.Native(q, k, v, scale: 0.5), Chunked(q, k, v, scale: 0.5, keyChunk: keyChunk));
    }

    [Fact]
    public void HugeSettingsWork()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(408);
        var options = new ChunkedAttentionOptions
        {
            ChunkSize = int.MaxValue, KeyChunkSize = int.MaxValue, MaxScoreElements = long.MaxValue, Devices = AttentionDevices.All,
        };
        Reference.AssertClose(Reference.Native(q, k, v, causal: true), ChunkedSdpa.Chunked(q, k, v, is_causal: true, options: options));
        Reference.AssertClose(Reference.Native(q, k, v), ChunkedSdpa.Attention(q, k, v, options: options));
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));
    }

    [Fact]
    public void TheAttributeTheOptionsAndTheirConstructorShareEachSettingsDefault()
    {
        var attribute = new ChunkedAttentionAttribute();
        var byConstructor = new ChunkedAttentionOptions(chunkSize: ChunkedAttentionOptions.DefaultChunkSize);
        foreach (var setting in typeof(ChunkedAttentionAttribute).GetProperties())
        {
            if (setting.DeclaringType != typeof(ChunkedAttentionAttribute))
            {
                continue; // Attribute.TypeId
            }

            var option = typeof(ChunkedAttentionOptions).GetProperty(setting.Name);
            Assert.True(option is not null, $"ChunkedAttentionOptions lacks the attribute's setting {setting.Name}");
            var expected = setting.GetValue(attribute);
            Assert.Equal(expected, option!.GetValue(ChunkedAttentionOptions.Default));
            Assert.Equal(expected, option.GetValue(new ChunkedAttentionOptions()));
            Assert.Equal(expected, option.GetValue(byConstructor));
        }
    }

    [Fact]
    public void OptionsAreImmutable()
    {
        foreach (var property in typeof(ChunkedAttentionOptions).GetProperties())
        {
            var setter = property.SetMethod;
            // By name: the netstandard2.0 build carries its own (assembly-private) IsExternalInit.
            Assert.True(setter is null || Array.Exists(setter.ReturnParameter.GetRequiredCustomModifiers(),
                m => m.FullName == "System.Runtime.CompilerServices.IsExternalInit"), $"{property.Name} has a public setter");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void ConcurrentCallsOnSharedInputsMatchASingleThread(int keyChunk)
    {
        var (q, k, v) = Inputs(409, l: 16, s: 16);
        var mask = Reference.Randn(Reference.Seeded(410), 2, 1, 16, 16);
        using var single = Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk);
        var identical = new bool[2 * 25];
        var threads = new Thread[2];
        for (var t = 0; t < threads.Length; t++)
        {
            var offset = t * 25;
            threads[t] = new Thread(() =>
            {
                for (var i = 0; i < 25; i++)
                {
                    using var scope = NewDisposeScope();
                    identical[offset + i] = single.eq(Chunked(q, k, v, mask, causal: true, keyChunk: keyChunk)).all().item<bool>();
                }
            });
            threads[t].Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        Assert.All(identical, Assert.True);
    }
}
