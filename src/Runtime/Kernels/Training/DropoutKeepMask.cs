using System;
using static TorchSharp.torch;

namespace ChunkedAttention.Kernels.Training;

/// <summary>
/// The dropout keep-mask of the training path, a pure function of (call key, score position): element (bh, i, j)
/// of the (batch x heads, L, S) scores is kept iff hash(bh*L*S + i*S + j, key) &gt;= p * 2^32. Forward and backward
/// compute the same bits for a step from its offsets alone, so nothing but the 62-bit key is saved (no bit mask,
/// no generator state), and the pattern does not depend on the chunk or block sizes.
/// </summary>
/// <remarks>
/// <para>Why a hash and not a seeded generator: TorchSharp 0.107 creates CPU generators only
/// (<c>torch.Generator(seed, device)</c> ignores the device) and exposes no CUDA/MPS generator state, so a replayable
/// draw on the device is not available; a counter-based hash in int64 tensor ops runs on any device.</para>
/// <para>The hash: x = (index + k1) mod 2^32; x ^= x &gt;&gt; 16; x = x * 0x7feb352d mod 2^32; x ^= k2;
/// x ^= x &gt;&gt; 15; x = x * 0x5bd1e995 mod 2^32. The multipliers are below 2^31 and x below 2^32, so no product
/// overflows int64 on any backend. Indices at or above 2^32 fold their high word in with a third multiplier.
/// The keys (k1, k2) are two 31-bit draws from the default CPU generator per call, so <c>manual_seed</c> makes
/// training runs reproducible.</para>
/// </remarks>
internal sealed class DropoutKeepMask
{
    private const long Low32 = 0xFFFFFFFFL;
    private const long Multiplier1 = 0x7feb352dL;
    private const long Multiplier2 = 0x5bd1e995L;
    private const long HighWordMultiplier = 0x2c1b3c6dL;

    private readonly long _key1;
    private readonly long _key2;
    private readonly long _threshold;
    private readonly long[] _scoreLeading;
    private readonly long _queryLength;
    private readonly long _keyLength;

    /// <param name="probability">Dropout probability p in (0, 1).</param>
    /// <param name="key1">First 31-bit key.</param>
    /// <param name="key2">Second 31-bit key.</param>
    /// <param name="scoreLeading">The scores' leading dims (N..., Hq).</param>
    /// <param name="queryLength">L.</param>
    /// <param name="keyLength">S.</param>
    public DropoutKeepMask(double probability, long key1, long key2, long[] scoreLeading, long queryLength, long keyLength)
    {
        Probability = probability;
        _key1 = key1 & Low32;
        _key2 = key2 & Low32;
        _threshold = (long)Math.Floor(probability * 4294967296.0);
        _scoreLeading = scoreLeading;
        _queryLength = queryLength;
        _keyLength = keyLength;
    }

    /// <summary>p.</summary>
    public double Probability { get; }

    /// <summary>1 / (1 - p), the factor kept weights are scaled by.</summary>
    public double KeptScale => 1.0 / (1.0 - Probability);

    /// <summary>Two fresh 31-bit keys from the default CPU generator (so <c>manual_seed</c> governs them).</summary>
    public static (long Key1, long Key2) DrawKeys()
    {
        using var keys = randint(int.MaxValue, new long[] { 2 }, dtype: ScalarType.Int64);
        return (keys[0].item<long>(), keys[1].item<long>());
    }

    /// <summary>
    /// The (N..., Hq, rows, keys) bools of the step covering query rows [rowStart, rowStart + rows) and keys
    /// [keyStart, keyStart + keys): true = kept.
    /// </summary>
    public Tensor Build(long rowStart, long rows, long keyStart, long keys, Device device)
    {
        using var scope = NewDisposeScope();
        long batch = 1;
        foreach (var d in _scoreLeading)
        {
            batch *= d;
        }

        var leadingShape = new long[_scoreLeading.Length + 2];
        Array.Copy(_scoreLeading, leadingShape, _scoreLeading.Length);
        leadingShape[leadingShape.Length - 2] = 1;
        leadingShape[leadingShape.Length - 1] = 1;

        var perBatch = _queryLength * _keyLength;
        var batchOffset = arange(0, batch, dtype: ScalarType.Int64, device: device).mul_(perBatch).view(leadingShape);
        var rowOffset = arange(rowStart, rowStart + rows, dtype: ScalarType.Int64, device: device).mul_(_keyLength).unsqueeze(1);
        var column = arange(keyStart, keyStart + keys, dtype: ScalarType.Int64, device: device);
        var index = batchOffset.add(rowOffset.add(column));

        var x = index.add(_key1);
        if (batch * perBatch > Low32)
        {
            var high = index.bitwise_right_shift(Scalar(32)).mul_(HighWordMultiplier);
            x.bitwise_xor_(high);
        }

        index.Dispose();
        x.bitwise_and_(Scalar(Low32));
        x.bitwise_xor_(x.bitwise_right_shift(Scalar(16))).mul_(Multiplier1).bitwise_and_(Scalar(Low32));
        x.bitwise_xor_(Scalar(_key2));
        x.bitwise_xor_(x.bitwise_right_shift(Scalar(15))).mul_(Multiplier2).bitwise_and_(Scalar(Low32));
        return scope.MoveToOuter(x.ge(_threshold));
    }

    /// <summary>A 0-dim CPU tensor: TorchSharp's bitwise ops take tensors, and a CPU scalar tensor combines with a tensor
    /// on any device without a copy to it.</summary>
    private static Tensor Scalar(long value) => tensor(value, ScalarType.Int64);
}
