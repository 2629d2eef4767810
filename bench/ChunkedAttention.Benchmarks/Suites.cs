using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>
/// The benchmark suites. <c>cpu</c> holds the runtime issue's CPU targets (fp32); <c>gpu</c> the device targets
/// of issue 15 (forced chunking at ChunkSize 1024, key blocks, the guard); <c>seed</c> the seed's diffusion shapes
/// with ChunkSize 1024 against auto; <c>experiments</c> the alternatives measured before choosing a kernel;
/// <c>training</c> forward + backward on a device; <c>cpu-training</c> issue 14's CPU training figure (minutes, so
/// not in the default CPU run). Device cases are meant for fp16 (<c>--dtype fp16</c>, the default on CUDA).
/// </summary>
internal static class Suites
{
    public static readonly string[] Names = { "cpu", "gpu", "seed", "experiments", "training", "cpu-training" };

    public static IReadOnlyList<BenchmarkCase> Named(string suite) => suite switch
    {
        "cpu" => Cpu,
        "gpu" => Gpu,
        "seed" => Seed,
        "experiments" => ExperimentCases,
        "training" => Training,
        "cpu-training" => CpuTraining,
        _ => throw new ArgumentException($"--suite: unknown suite '{suite}'. Suites: {string.Join(", ", Names)}"),
    };

    public static IEnumerable<BenchmarkCase> Every => Names.SelectMany(Named);

    private static ChunkedAttentionOptions Forced(int chunkSize, int keyChunkSize = 0, long cap = 0) =>
        new() { ChunkSize = chunkSize, KeyChunkSize = keyChunkSize, MaxScoreElements = cap, Devices = AttentionDevices.All };

    /// <summary>The runtime issue's CPU cases (names and targets unchanged: README's CPU table).</summary>
    public static IReadOnlyList<BenchmarkCase> Cpu { get; } = new[]
    {
        new BenchmarkCase("self-1024", "self-attention B2 H8 L=S=4096 E64, ChunkSize 1024",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(1024), 1.03, 15),
        new BenchmarkCase("self-512", "self-attention B2 H8 L=S=4096 E64, ChunkSize 512",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(512), null, 9),
        new BenchmarkCase("cross-regional", "cross-attention B2 H8 L=4096 S=77 E64, (B,1,L,S) regional mask, ChunkSize 1024",
            2, 8, 4096, 77, 64, true, Variant.Native, Variant.Chunked, Forced(1024), 1.06, 101),
        new BenchmarkCase("guard-native", "guard's non-chunking path (MPS-only options on CPU), self-attention B2 H8 L=S=4096 E64",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Guard, ChunkedAttentionOptions.Default, 1.02, 9),
        new BenchmarkCase("keys-8192", "key blocks, B1 H4 L=S=8192 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 8192, 8192, 64, false, Variant.Native, Variant.Chunked, Forced(512, 1024), 2.0, 5),
        new BenchmarkCase("keys-16384", "key blocks, B1 H4 L=S=16384 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(512, 1024), 2.0, 3,
            MemoryBaseline: Variant.Manual, MemoryTarget: 0.10),
        new BenchmarkCase("manual-16384", "manual attention (matmul + softmax + matmul), B1 H4 L=S=16384 E64",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Manual, ChunkedAttentionOptions.Default, null, 1),
    };

    /// <summary>Issue 15's device targets (H200, fp16): forced chunking at 1024, key blocks, the guard.</summary>
    public static IReadOnlyList<BenchmarkCase> Gpu { get; } = new[]
    {
        new BenchmarkCase("gpu-self-4096", "self-attention B2 H8 L=S=4096 E64, ChunkSize 1024 (forced)",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(1024), 1.15, 41) { FloorTarget = 1.10 },
        new BenchmarkCase("gpu-causal-4096", "causal self-attention B2 H8 L=S=4096 E64, ChunkSize 1024 (forced)",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(1024), null, 41) { IsCausal = true, FloorTarget = 1.10 },
        new BenchmarkCase("gpu-self-16384", "self-attention B2 H8 L=S=16384 E64, ChunkSize 1024 (forced)",
            2, 8, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(1024), 1.05, 21) { FloorTarget = 1.10 },
        new BenchmarkCase("gpu-causal-16384", "causal self-attention B2 H8 L=S=16384 E64, ChunkSize 1024 (forced)",
            2, 8, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(1024), null, 21) { IsCausal = true, FloorTarget = 1.10 },
        new BenchmarkCase("gpu-cross-regional", "cross-attention B2 H8 L=4096 S=77 E64, (B,1,L,S) bool regional mask, ChunkSize 1024 (forced)",
            2, 8, 4096, 77, 64, true, Variant.Native, Variant.Chunked, Forced(1024), 2.0, 101) { FloorTarget = 1.10 },
        new BenchmarkCase("gpu-keys-4096", "key blocks B2 H8 L=S=4096 E64, ChunkSize 0 (auto: all rows), KeyChunkSize 1024",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(0, 1024), 8.0, 21),
        new BenchmarkCase("gpu-keys-4096-k2048", "key blocks B2 H8 L=S=4096 E64, ChunkSize 0 (auto: all rows), KeyChunkSize 2048",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(0, 2048), 8.0, 21),
        new BenchmarkCase("gpu-keys-causal-4096", "key blocks, causal, B2 H8 L=S=4096 E64, ChunkSize 0 (auto), KeyChunkSize 1024",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(0, 1024), null, 21) { IsCausal = true },
        new BenchmarkCase("gpu-keys-4096-c1024", "key blocks B2 H8 L=S=4096 E64, ChunkSize 1024, KeyChunkSize 1024 (the issue's first figure)",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked, Forced(1024, 1024), 8.0, 21),
        new BenchmarkCase("gpu-guard", "guard's native path (MPS-only options on CUDA), self-attention B2 H8 L=S=4096 E64",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Guard, ChunkedAttentionOptions.Default, 1.02, 41),
        new BenchmarkCase("gpu-guard-cross", "guard's native path (MPS-only options on CUDA), cross-attention B2 H8 L=4096 S=77 E64, regional mask",
            2, 8, 4096, 77, 64, true, Variant.Native, Variant.Guard, ChunkedAttentionOptions.Default, 1.02, 101),
    };

    /// <summary>
    /// The seed's shapes (SD 1.5: E = 40, 8 heads; SDXL: E = 64, 10-20 heads; batch 2 for classifier-free guidance;
    /// 77-token prompts with a (B, 1, L, 77) regional mask), each with ChunkSize 1024 and with auto (ChunkSize 0).
    /// </summary>
    public static IReadOnlyList<BenchmarkCase> Seed { get; } = BuildSeed().ToArray();

    private static IEnumerable<BenchmarkCase> BuildSeed()
    {
        var shapes = new (string Name, string What, long Heads, long L, long S, long E, bool Mask)[]
        {
            ("sd15-512-self", "SD 1.5 at 512 px (64x64 latent): self B2 H8 L=S=4096 E40", 8, 4096, 4096, 40, false),
            ("sd15-512-cross", "SD 1.5 at 512 px: cross B2 H8 L=4096 S=77 E40, regional mask", 8, 4096, 77, 40, true),
            ("sd15-1024-self", "SD 1.5 at 1024 px (128x128 latent): self B2 H8 L=S=16384 E40", 8, 16384, 16384, 40, false),
            ("sd15-1024-cross", "SD 1.5 at 1024 px: cross B2 H8 L=16384 S=77 E40, regional mask", 8, 16384, 77, 40, true),
            ("sdxl-1024-self", "SDXL at 1024 px (128x128 latent, first attention at 64x64): self B2 H10 L=S=4096 E64", 10, 4096, 4096, 64, false),
            ("sdxl-1024-cross", "SDXL at 1024 px: cross B2 H10 L=4096 S=77 E64, regional mask", 10, 4096, 77, 64, true),
            ("sdxl-1024-self-h20", "SDXL at 1024 px, inner blocks: self B2 H20 L=S=1024 E64", 20, 1024, 1024, 64, false),
            ("sdxl-2048-self", "SDXL at 2048 px: self B2 H10 L=S=16384 E64", 10, 16384, 16384, 64, false),
        };
        foreach (var (name, what, heads, l, s, e, mask) in shapes)
        {
            var runs = l * s > 100_000_000 ? 15 : 41;
            yield return new BenchmarkCase($"{name}-1024", what + ", ChunkSize 1024",
                2, heads, l, s, e, mask, Variant.Native, Variant.Chunked, Forced(1024), null, runs);
            yield return new BenchmarkCase($"{name}-auto", what + ", ChunkSize 0 (auto)",
                2, heads, l, s, e, mask, Variant.Native, Variant.Chunked, Forced(0), null, runs);
        }

        // Where a cap forces chunks: the fewest equal ones against 1024-row chunks under the same cap.
        foreach (var (chunk, label) in new[] { (1024, "1024"), (0, "auto") })
        {
            yield return new BenchmarkCase($"sd15-512-self-cap27-{label}", $"SD 1.5 512 px self, MaxScoreElements 2^27, ChunkSize {label}",
                2, 8, 4096, 4096, 40, false, Variant.Native, Variant.Chunked, Forced(chunk, cap: 1L << 27), null, 41);
            yield return new BenchmarkCase($"sd15-1024-self-cap29-{label}", $"SD 1.5 1024 px self, MaxScoreElements 2^29, ChunkSize {label}",
                2, 8, 16384, 16384, 40, false, Variant.Native, Variant.Chunked, Forced(chunk, cap: 1L << 29), null, 15);
        }
    }

    /// <summary>Alternatives to the runtime's kernels, each with its floor.</summary>
    public static IReadOnlyList<BenchmarkCase> ExperimentCases { get; } = BuildExperiments().ToArray();

    private static IEnumerable<BenchmarkCase> BuildExperiments()
    {
        foreach (var l in new long[] { 4096, 16384 })
        {
            var runs = l > 4096 ? 15 : 41;
            yield return Experiment($"exp-causal-{l}-bool-per-chunk", $"causal self B2 H8 L=S={l} E64, 1024-row chunks, bool band built per chunk (the previous runtime)",
                l, l, false, true, runs, (i, n) => Experiments.CausalBoolPerChunk(i, 1024, n));
            yield return Experiment($"exp-causal-{l}-additive-once", $"causal self B2 H8 L=S={l} E64, 1024-row chunks, band as an additive query-dtype triangle built once per call",
                l, l, false, true, runs, (i, n) => Experiments.CausalAdditiveOnce(i, 1024, n));
            yield return Experiment($"exp-causal-{l}-bool-once", $"causal self B2 H8 L=S={l} E64, 1024-row chunks, bool band triangle built once per call",
                l, l, false, true, runs, (i, n) => Experiments.CausalBoolOnce(i, 1024, n));
            yield return Experiment($"exp-self-{l}-split-cat", $"self B2 H8 L=S={l} E64, 1024-row chunks: one split, one cat",
                l, l, false, false, runs, (i, n) => Experiments.SplitCat(i, 1024, n));
        }

        yield return Experiment("exp-cross-split-cat", "cross B2 H8 L=4096 S=77 E64 regional mask, 1024-row chunks: one split, one cat",
            4096, 77, true, false, 101, (i, n) => Experiments.SplitCat(i, 1024, n));
        yield return Experiment("exp-cross-additive-once", "cross B2 H8 L=4096 S=77 E64 regional mask, 1024-row chunks, bool mask made additive (fp16) once per call",
            4096, 77, true, false, 101, (i, n) => Experiments.AdditiveMaskOnce(i, Forced(1024), n));
    }

    private static BenchmarkCase Experiment(string name, string description, long l, long s, bool mask, bool causal, int runs,
        Func<AttentionInputs, Kernels.NativeSdpa, Tensor> run) =>
        new(name, description, 2, 8, l, s, 64, mask, Variant.Native, Variant.Experiment, ChunkedAttentionOptions.Default, null, runs)
        {
            IsCausal = causal,
            Experiment = new ExperimentKernel(name, run),
        };

    /// <summary>Forward + backward (gradients of query, key and value), fp16 on a device.</summary>
    public static IReadOnlyList<BenchmarkCase> Training { get; } = new[]
    {
        new BenchmarkCase("train-self-16384-1024", "forward + backward, self B2 H8 L=S=16384 E64, ChunkSize 1024 (forced)",
            2, 8, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(1024), null, 9) { Training = true },
        new BenchmarkCase("train-self-16384-auto", "forward + backward, self B2 H8 L=S=16384 E64, ChunkSize 0 (auto)",
            2, 8, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(0), null, 9) { Training = true },
        // Issue 14's device figure: key blocks (the training kernel's recomputing backward) against native's fused
        // forward + backward; peak device memory within 1.5x native's.
        new BenchmarkCase("train-keys-16384", "forward + backward, key blocks, B1 H4 L=S=16384 E64, ChunkSize 512, KeyChunkSize 512",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(512, 512), null, 5,
            MemoryBaseline: Variant.Native, MemoryTarget: 1.5) { Training = true },
        new BenchmarkCase("train-keys-16384-2048", "forward + backward, key blocks, B1 H4 L=S=16384 E64, ChunkSize 2048, KeyChunkSize 2048",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Chunked, Forced(2048, 2048), null, 5) { Training = true },
    };

    /// <summary>
    /// Issue 14's CPU figure (fp32): forward + backward through key blocks at L = S = 8192 against native SDPA's
    /// (time within 3x) and against hand-written attention's extra memory (within 1/20: autograd keeps its
    /// probabilities). Each variant's forward + backward takes seconds on the CPU, the whole case minutes, so it runs
    /// only on request (<c>--suite cpu-training</c> or <c>--case train-keys-8192</c>).
    /// </summary>
    public static IReadOnlyList<BenchmarkCase> CpuTraining { get; } = new[]
    {
        new BenchmarkCase("train-keys-8192", "forward + backward, key blocks, B1 H4 L=S=8192 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 8192, 8192, 64, false, Variant.Native, Variant.Chunked, Forced(512, 1024), 3.0, 3,
            MemoryBaseline: Variant.Manual, MemoryTarget: 1.0 / 20) { Training = true },
    };
}
