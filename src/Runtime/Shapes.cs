using System;
using System.Globalization;
using System.Linq;
using static TorchSharp.torch;

namespace ChunkedAttention;

/// <summary>Shape arithmetic and the way shapes are written in messages.</summary>
internal static class Shapes
{
    /// <summary>Writes a shape as users read it in messages, e.g. <c>[2, 8, 4096, 64]</c>.</summary>
    public static string Format(long[] shape)
    {
        var parts = new string[shape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            parts[i] = shape[i].ToString(CultureInfo.InvariantCulture);
        }

        return "[" + string.Join(", ", parts) + "]";
    }

    public static string Format(Tensor tensor) => Format(tensor.shape);

    /// <summary>The dims before the last two: (N..., H) of an (N..., H, L, E) tensor.</summary>
    public static long[] Leading(long[] shape) => shape.Take(shape.Length - 2).ToArray();

    /// <summary>NumPy/PyTorch broadcasting of two shapes, aligned from the right; null when they do not broadcast.</summary>
    public static long[]? Broadcast(long[] a, long[] b)
    {
        var rank = Math.Max(a.Length, b.Length);
        var result = new long[rank];
        for (var i = 1; i <= rank; i++)
        {
            var x = i <= a.Length ? a[^i] : 1;
            var y = i <= b.Length ? b[^i] : 1;
            if (x != y && x != 1 && y != 1)
            {
                return null;
            }

            result[^i] = x == 1 ? y : x;
        }

        return result;
    }

    /// <summary>
    /// The leading dims of the q·kᵀ scores for a query and key shape, assuming they are compatible:
    /// the per-dim maximum equals the broadcast (and the query heads under grouped-query attention).
    /// </summary>
    public static long[] ScoreLeading(long[] queryShape, long[] keyShape)
    {
        var q = Leading(queryShape);
        var k = Leading(keyShape);
        var rank = Math.Max(q.Length, k.Length);
        var result = new long[rank];
        for (var i = 1; i <= rank; i++)
        {
            var x = i <= q.Length ? q[^i] : 1;
            var y = i <= k.Length ? k[^i] : 1;
            result[^i] = x == 0 || y == 0 ? 0 : Math.Max(x, y);
        }

        return result;
    }

    /// <summary>
    /// batch x heads of the q·kᵀ scores: the product of <see cref="ScoreLeading"/>. The one way the validator, the
    /// planner and the guard count the scores of one row of keys.
    /// </summary>
    public static long ScoreBatch(long[] queryShape, long[] keyShape) => Product(ScoreLeading(queryShape, keyShape));

    /// <summary>Product of the dims, saturating at <see cref="long.MaxValue"/>.</summary>
    public static long Product(long[] dims)
    {
        long product = 1;
        foreach (var d in dims)
        {
            product = SaturatingMultiply(product, d);
        }

        return product;
    }

    /// <summary>a*b for non-negative a and b, saturating at <see cref="long.MaxValue"/> instead of overflowing.</summary>
    public static long SaturatingMultiply(long a, long b)
    {
        if (a == 0 || b == 0)
        {
            return 0;
        }

        return a > long.MaxValue / b ? long.MaxValue : a * b;
    }
}
