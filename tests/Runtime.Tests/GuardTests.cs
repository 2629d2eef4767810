using System;
using System.Collections.Generic;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// <see cref="ChunkedSdpa.ShouldChunk"/> and the guard in <see cref="ChunkedSdpa.Attention"/>: devices, sizes,
/// MaxScoreElements and the environment overrides. Runs alone because it sets environment variables.
/// </summary>
[Collection(EnvironmentCollection.Name)]
public class GuardTests
{
    private static AttentionInputs Inputs() => AttentionInputs.Random(100, l: 8, s: 9);

    [Fact]
    public void MpsOnlyOptionsOnACpuTensorCallNative()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = 2 };
        Assert.Equal(AttentionDevices.Mps, options.Devices);
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));

        var recorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), recorder.Attention(q, k, v, options));
        var step = Assert.Single(recorder.Steps);
        Assert.Equal(8, step.QueryRows);
        Assert.Equal(9, step.KeyRows);
    }

    [Theory]
    [InlineData(3, 3)]
    [InlineData(8, 1)]
    [InlineData(100, 1)]
    public void AllDevicesChunkOnlyWhenTheQueryIsLongerThanAChunk(int chunkSize, int steps)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = chunkSize, Devices = AttentionDevices.All };
        Assert.Equal(steps > 1, ChunkedSdpa.ShouldChunk(q, k, options));

        var recorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), recorder.Attention(q, k, v, options));
        Assert.Equal(steps, recorder.Count);
    }

    [Fact]
    public void CpuFlagChunksAndOtherFlagsDoNot()
    {
        var (q, k, _) = Inputs();
        Assert.True(ChunkedSdpa.ShouldChunk(q, k, new ChunkedAttentionOptions { ChunkSize = 3, Devices = AttentionDevices.Cpu }));
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, new ChunkedAttentionOptions { ChunkSize = 3, Devices = AttentionDevices.Cuda | AttentionDevices.Mps }));
        // Devices = None selects no device: the one settings rulebook rejects it (SDPA003 at build time).
        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedSdpa.ShouldChunk(q, k, new ChunkedAttentionOptions { ChunkSize = 3, Devices = AttentionDevices.None }));
    }

    [Fact]
    public void KeysLongerThanTheKeyBlockChunk()
    {
        var (q, k, _) = Inputs();
        Assert.True(ChunkedSdpa.ShouldChunk(q, k, new ChunkedAttentionOptions { ChunkSize = 100, KeyChunkSize = 4, Devices = AttentionDevices.All }));
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, new ChunkedAttentionOptions { ChunkSize = 100, KeyChunkSize = 9, Devices = AttentionDevices.All }));
    }

    [Fact]
    public void MaxScoreElementsLowersTheChunk()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        // batch*heads = 6, S = 9: a cap of 6*9*2 scores allows 2 rows per chunk instead of 8.
        var options = new ChunkedAttentionOptions { ChunkSize = 8, MaxScoreElements = 6 * 9 * 2, Devices = AttentionDevices.All };
        Assert.True(ChunkedSdpa.ShouldChunk(q, k, options));
        var plan = ChunkedSdpa.Plan(q, k, options);
        Assert.Equal(2, plan.QueryRows);
        Assert.Equal(4, plan.QueryChunks);

        var recorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), recorder.Attention(q, k, v, options));
        Assert.Equal(4, recorder.Count);
        Assert.True(recorder.LargestScoreBlock <= options.MaxScoreElements);
    }

    [Fact]
    public void NativePathStillHonoursScaleGqaAndCausalWithMask()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(101, hq: 6, hkv: 2);
        var mask = rand(new long[] { 2, 1, 7, 9 }, generator: Reference.Seeded(102)).gt(0.2);
        var expected = Reference.Native(q, k, v, mask, causal: true, scale: 0.4, gqa: true);
        var actual = ChunkedSdpa.Attention(q, k, v, mask, is_causal: true, scale: 0.4, enable_gqa: true);
        Reference.AssertClose(expected, actual);
    }

    [Theory]
    [InlineData(AttentionDevices.Mps, "", false)]
    [InlineData(AttentionDevices.Cpu, "", true)]
    [InlineData(AttentionDevices.Cuda | AttentionDevices.Mps, "auto", false)]
    [InlineData(AttentionDevices.All, "auto", true)]
    [InlineData(AttentionDevices.Mps, "always", true)]
    [InlineData(AttentionDevices.All, "off", false)]
    public void IsChunkingDeviceReadsOnlyTheDeviceAndTheModeVariable(AttentionDevices devices, string mode, bool expected)
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.Mode, mode);
        var (q, k, _) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = 3, Devices = devices };
        Assert.Equal(expected, ChunkedSdpa.IsChunkingDevice(q, options));

        // The cheap guard is the device half of ShouldChunk: with sizes that split, both agree.
        Assert.Equal(expected, ChunkedSdpa.ShouldChunk(q, k, options));
    }

    [Fact]
    public void IsChunkingDeviceThrowsForAnInvalidModeVariable()
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.Mode, "sometimes");
        var (q, _, _) = Inputs();
        var e = Assert.Throws<InvalidOperationException>(() => ChunkedSdpa.IsChunkingDevice(q));
        Assert.Contains("CHUNKED_ATTENTION has the invalid value 'sometimes'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SkipDeviceCheckTrustsTheCallersGuard()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var mpsOnly = new ChunkedAttentionOptions { ChunkSize = 3 };
        var trusted = new ChunkedAttentionOptions { ChunkSize = 3, SkipDeviceCheck = true };

        var checkedRecorder = new StepRecorder();
        checkedRecorder.Attention(q, k, v, mpsOnly);
        Assert.Equal(1, checkedRecorder.Count); // CPU is not an MPS device: one native step

        var trustingRecorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), trustingRecorder.Attention(q, k, v, trusted));
        Assert.Equal(3, trustingRecorder.Count); // the device check was the caller's: the plan's three chunks
    }

    [Theory]
    [InlineData(false, false, false, false, true)]
    [InlineData(true, false, false, false, true)]
    [InlineData(false, true, false, false, true)]
    [InlineData(true, true, false, false, false)]
    [InlineData(false, false, true, false, false)]
    [InlineData(false, false, false, true, false)]
    public void IsNativeCallRulesOutExactlyWhatTorchSharpCannotDo(bool mask, bool causal, bool scale, bool gqa, bool native)
    {
        using var scope = NewDisposeScope();
        var attnMask = mask ? ones(8, 9, dtype: ScalarType.Bool) : null;
        Assert.Equal(native, ChunkedSdpa.IsNativeCall(attnMask, causal, scale ? 0.3 : null, gqa));
    }

    [Fact]
    public void NativeNeverChunksAndAdaptsScaleGqaAndCausalWithMask()
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.Mode, "always").Set(EnvironmentScope.ChunkSize, "2");
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(103, hq: 6, hkv: 2);
        var mask = rand(new long[] { 2, 1, 7, 9 }, generator: Reference.Seeded(104)).gt(0.2);
        var recorder = new StepRecorder();
        using (recorder.Install())
        {
            var actual = ChunkedSdpa.Native(q, k, v, mask, is_causal: true, scale: 0.4, enable_gqa: true);
            Reference.AssertClose(Reference.Native(q, k, v, mask, causal: true, scale: 0.4, gqa: true), actual);
        }

        var step = Assert.Single(recorder.Steps);
        Assert.Equal(q.size(-2), step.QueryRows);
    }

    [Theory]
    [InlineData("off", false)]
    [InlineData("OFF", false)]
    [InlineData("always", true)]
    [InlineData(" Always ", true)]
    [InlineData("auto", false)]
    [InlineData("", false)]
    public void ModeVariableOnAnMpsOnlyGuard(string value, bool chunks)
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.Mode, value);
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = 3 };
        Assert.Equal(chunks, ChunkedSdpa.ShouldChunk(q, k, options));
        var recorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), recorder.Attention(q, k, v, options));
        Assert.Equal(chunks ? 3 : 1, recorder.Count);
    }

    [Fact]
    public void OffWinsOverAllDevicesAndAutoKeepsThem()
    {
        var (q, k, _) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = 3, Devices = AttentionDevices.All };
        using (new EnvironmentScope().Set(EnvironmentScope.Mode, "off"))
        {
            Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));
        }

        using (new EnvironmentScope().Set(EnvironmentScope.Mode, "auto"))
        {
            Assert.True(ChunkedSdpa.ShouldChunk(q, k, options));
        }
    }

    [Fact]
    public void ChunkedIgnoresTheModeVariable()
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.Mode, "off");
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var recorder = new StepRecorder();
        recorder.Chunked(q, k, v, new ChunkedAttentionOptions { ChunkSize = 3 });
        Assert.Equal(3, recorder.Count);
    }

    [Fact]
    public void ChunkSizeVariableReplacesChunkSize()
    {
        using var env = new EnvironmentScope().Set(EnvironmentScope.ChunkSize, "2");
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs();
        var options = new ChunkedAttentionOptions { ChunkSize = 100, Devices = AttentionDevices.All };
        Assert.True(ChunkedSdpa.ShouldChunk(q, k, options));
        Assert.Equal(2, ChunkedSdpa.Plan(q, k, options).QueryRows);
        var recorder = new StepRecorder();
        Reference.AssertClose(Reference.Native(q, k, v), recorder.Attention(q, k, v, options));
        Assert.Equal(4, recorder.Count);

        // Read on every call: changing it takes effect at once.
        Environment.SetEnvironmentVariable(EnvironmentScope.ChunkSize, "8");
        Assert.False(ChunkedSdpa.ShouldChunk(q, k, options));
    }

    /// <summary>What each variable's message must offer instead of an invalid value.</summary>
    private static readonly Dictionary<string, string[]> AcceptedValues = new()
    {
        [EnvironmentScope.Mode] = new[] { "Use auto", "off (never chunk)", "always (chunk on any device)", "unset it" },
        [EnvironmentScope.ChunkSize] = new[] { "Use a positive integer up to 9223372036854775807", "unset it" },
    };

    [Theory]
    [InlineData(EnvironmentScope.Mode, "sometimes")]
    [InlineData(EnvironmentScope.Mode, "on")]
    [InlineData(EnvironmentScope.Mode, "1")]
    [InlineData(EnvironmentScope.ChunkSize, "0")]
    [InlineData(EnvironmentScope.ChunkSize, "-3")]
    [InlineData(EnvironmentScope.ChunkSize, "abc")]
    [InlineData(EnvironmentScope.ChunkSize, "1.5")]
    [InlineData(EnvironmentScope.ChunkSize, "99999999999999999999999")]
    public void InvalidVariableThrowsNamingItsValueAndTheAcceptedValues(string variable, string value)
    {
        using var env = new EnvironmentScope().Set(variable, value);
        var (q, k, v) = Inputs();
        foreach (var call in Calls(q, k, v))
        {
            var e = Assert.Throws<InvalidOperationException>(call);
            Assert.Contains($"Environment variable {variable} has the invalid value '{value}'", e.Message, StringComparison.Ordinal);
            foreach (var accepted in AcceptedValues[variable])
            {
                Assert.Contains(accepted, e.Message, StringComparison.Ordinal);
            }
        }
    }

    private static Action[] Calls(Tensor q, Tensor k, Tensor v)
    {
        var options = new ChunkedAttentionOptions { Devices = AttentionDevices.All };
        return new Action[]
        {
            () => ChunkedSdpa.ShouldChunk(q, k, options),
            () => ChunkedSdpa.Plan(q, k, options),
            () => ChunkedSdpa.Attention(q, k, v, options: options).Dispose(),
            () => ChunkedSdpa.Chunked(q, k, v, options: options).Dispose(),
        };
    }
}
