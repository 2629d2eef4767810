using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>An attention class as a user writes it: the generator adds its device-guarded wrapper (default settings).</summary>
[ChunkedAttention]
internal sealed partial class DecodeAttention
{
    /// <summary>The generated <c>ChunkedScaledDotProductAttention</c>, exactly as a model calls it.</summary>
    public static Tensor Call(Tensor query, Tensor key, Tensor value) => ChunkedScaledDotProductAttention(query, key, value);
}

/// <summary>
/// Host overhead per call for decode-size calls (query length 1 to 77), where the guard's work is largest relative
/// to the attention itself: <see cref="ChunkedSdpa.Attention"/> (default options: MPS only, so native on CPU and CUDA)
/// and the generated wrapper (<see cref="DecodeAttention"/>) against a direct TorchSharp SDPA call. Rounds of
/// back-to-back calls alternate between the three; each round's per-call difference to the direct call is the added
/// time, reported as the median over rounds.
/// </summary>
internal static class DecodeOverhead
{
    private static readonly (long L, long S)[] Shapes = { (1, 77), (16, 77), (77, 77), (1, 1024) };

    public static IReadOnlyList<string> Run(DeviceClock clock, ScalarType dtype, int rounds = 21)
    {
        var calls = clock.IsCuda ? 400 : 2000;
        var lines = new List<string>
        {
            $"Guard overhead per call, decode-size calls (B2 H8 E64, {Name(dtype)}, {clock.Device}; {calls} calls per round, {rounds} rounds, medians):",
            "| query x keys | direct native us/call | Attention us/call | added us | generated wrapper us/call | added us | target (CPU) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        };
        using var noGrad = no_grad();
        foreach (var (l, s) in Shapes)
        {
            using var scope = NewDisposeScope();
            manual_seed(7);
            var q = randn(2, 8, l, 64).to(dtype).to(clock.Device);
            var k = randn(2, 8, s, 64).to(dtype).to(clock.Device);
            var v = randn(2, 8, s, 64).to(dtype).to(clock.Device);
            var variants = new Func<Tensor>[]
            {
                () => nn.functional.scaled_dot_product_attention(q, k, v),
                () => ChunkedSdpa.Attention(q, k, v),
                () => DecodeAttention.Call(q, k, v),
            };

            foreach (var run in variants)
            {
                clock.Time(run, calls / 10); // warm-up
            }

            var perCall = variants.Select(_ => new List<double>()).ToArray();
            var added = new[] { new List<double>(), new List<double>() };
            for (var round = 0; round < rounds; round++)
            {
                var times = new double[variants.Length];
                for (var j = 0; j < variants.Length; j++)
                {
                    var index = (j + round) % variants.Length;
                    times[index] = clock.Time(variants[index], calls) * 1000.0;
                }

                for (var j = 0; j < variants.Length; j++)
                {
                    perCall[j].Add(times[j]);
                }

                added[0].Add(times[1] - times[0]);
                added[1].Add(times[2] - times[0]);
            }

            var a = Median(added[0]);
            var w = Median(added[1]);
            var target = clock.IsCuda ? "-" : $"< 2 us: {(Math.Max(a, w) < 2.0 ? "met" : "MISSED")}";
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {l} x {s} | {Median(perCall[0]):F2} | {Median(perCall[1]):F2} | {a:F2} | {Median(perCall[2]):F2} | {w:F2} | {target} |"));
        }

        return lines;
    }

    private static string Name(ScalarType dtype) => dtype.ToString();

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(x => x).ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
