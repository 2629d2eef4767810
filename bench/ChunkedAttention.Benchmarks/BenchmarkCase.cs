using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>One way of computing attention for a case's inputs.</summary>
public enum Variant
{
    /// <summary>TorchSharp's scaled_dot_product_attention, called directly.</summary>
    Native,

    /// <summary><see cref="ChunkedSdpa.Chunked"/> with the case's options.</summary>
    Chunked,

    /// <summary><see cref="ChunkedSdpa.Attention"/> with the default (MPS-only) options on CPU: the guard's native path.</summary>
    Guard,

    /// <summary>matmul + softmax + matmul, the way attention is written by hand in TorchSharp.</summary>
    Manual,
}

/// <summary>Inputs of one attention call.</summary>
public sealed record AttentionInputs(Tensor Query, Tensor Key, Tensor Value, Tensor? Mask, bool IsCausal) : IDisposable
{
    /// <summary>The output's gradient backward starts from (training cases only).</summary>
    public Tensor? Upstream { get; init; }

    public void Dispose()
    {
        Upstream?.Dispose();
        Query.Dispose();
        Key.Dispose();
        Value.Dispose();
        Mask?.Dispose();
    }
}

/// <summary>A benchmark case: shapes, the variant it is compared against, and the target ratio.</summary>
/// <param name="Name">Short id used on the command line.</param>
/// <param name="Description">What the case is.</param>
/// <param name="Batch">B.</param>
/// <param name="Heads">H.</param>
/// <param name="QueryRows">L.</param>
/// <param name="KeyRows">S.</param>
/// <param name="HeadDim">E.</param>
/// <param name="RegionalMask">Whether a boolean (B, 1, L, S) regional mask is passed.</param>
/// <param name="Baseline">The variant the candidate is timed against.</param>
/// <param name="Candidate">The variant measured.</param>
/// <param name="Options">Options passed to the candidate.</param>
/// <param name="TimeTarget">Largest acceptable candidate/baseline median ratio, if any.</param>
/// <param name="Runs">Paired runs (after one warm-up pair); short cases need many for a stable median.</param>
/// <param name="MemoryBaseline">Variant whose peak memory the candidate's is compared with, if any.</param>
/// <param name="MemoryTarget">Largest acceptable candidate/memory-baseline peak ratio, if any.</param>
public sealed record BenchmarkCase(
    string Name,
    string Description,
    long Batch,
    long Heads,
    long QueryRows,
    long KeyRows,
    long HeadDim,
    bool RegionalMask,
    Variant Baseline,
    Variant Candidate,
    ChunkedAttentionOptions Options,
    double? TimeTarget,
    int Runs,
    Variant? MemoryBaseline = null,
    double? MemoryTarget = null)
{
    /// <summary>
    /// Forward and backward (gradients of query, key and value for a fixed upstream gradient) instead of forward
    /// under no_grad. Memory is then compared as extra memory: the peak above the process's resident memory once
    /// the inputs exist (see the memory child in Program).
    /// </summary>
    public bool Training { get; init; }

    /// <summary>The cases the issues name, in report order.</summary>
    public static IReadOnlyList<BenchmarkCase> All { get; } = new[]
    {
        new BenchmarkCase("self-1024", "self-attention B2 H8 L=S=4096 E64, ChunkSize 1024",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 1024, Devices = AttentionDevices.All }, 1.03, 15),
        new BenchmarkCase("self-512", "self-attention B2 H8 L=S=4096 E64, ChunkSize 512",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 512, Devices = AttentionDevices.All }, null, 9),
        new BenchmarkCase("cross-regional", "cross-attention B2 H8 L=4096 S=77 E64, (B,1,L,S) regional mask, ChunkSize 1024",
            2, 8, 4096, 77, 64, true, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 1024, Devices = AttentionDevices.All }, 1.06, 101),
        new BenchmarkCase("guard-native", "guard's non-chunking path (MPS-only options on CPU), self-attention B2 H8 L=S=4096 E64",
            2, 8, 4096, 4096, 64, false, Variant.Native, Variant.Guard,
            ChunkedAttentionOptions.Default, 1.02, 9),
        new BenchmarkCase("keys-8192", "key blocks, B1 H4 L=S=8192 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 8192, 8192, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 512, KeyChunkSize = 1024, Devices = AttentionDevices.All }, 2.0, 5),
        new BenchmarkCase("keys-16384", "key blocks, B1 H4 L=S=16384 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 512, KeyChunkSize = 1024, Devices = AttentionDevices.All }, 2.0, 3,
            MemoryBaseline: Variant.Manual, MemoryTarget: 0.10),
        new BenchmarkCase("manual-16384", "manual attention (matmul + softmax + matmul), B1 H4 L=S=16384 E64",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Manual,
            ChunkedAttentionOptions.Default, null, 1),
        new BenchmarkCase("train-keys-8192", "forward + backward, key blocks, B1 H4 L=S=8192 E64, ChunkSize 512, KeyChunkSize 1024",
            1, 4, 8192, 8192, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 512, KeyChunkSize = 1024, Devices = AttentionDevices.All }, 3.0, 3,
            MemoryBaseline: Variant.Manual, MemoryTarget: 1.0 / 20) { Training = true },
    };

    /// <summary>
    /// Cases run only when named with --case: issue 14's GPU training figure (fp16 at L = S = 16384 on a device: key
    /// blocks against native's fused forward + backward, peak memory within 1.5x native's).
    /// </summary>
    public static IReadOnlyList<BenchmarkCase> OnRequest { get; } = new[]
    {
        new BenchmarkCase("train-keys-16384", "forward + backward, key blocks, B1 H4 L=S=16384 E64, ChunkSize 512, KeyChunkSize 512",
            1, 4, 16384, 16384, 64, false, Variant.Native, Variant.Chunked,
            new ChunkedAttentionOptions { ChunkSize = 512, KeyChunkSize = 512, Devices = AttentionDevices.All }, null, 5,
            MemoryBaseline: Variant.Native, MemoryTarget: 1.5) { Training = true },
    };

    /// <summary>Every case --case can name.</summary>
    public static IEnumerable<BenchmarkCase> Every => All.Concat(OnRequest);


    /// <summary>Creates the case's inputs (fp32, CPU) from a fixed seed; training cases' inputs require grad.</summary>
    public AttentionInputs CreateInputs()
    {
        manual_seed(1234);
        Tensor query = randn(Batch, Heads, QueryRows, HeadDim).requires_grad_(Training);
        Tensor key = randn(Batch, Heads, KeyRows, HeadDim).requires_grad_(Training);
        Tensor value = randn(Batch, Heads, KeyRows, HeadDim).requires_grad_(Training);
        Tensor? mask = null;
        if (RegionalMask)
        {
            // Each query row sees the shared tokens plus the span of its region, as regional guidance does.
            using Tensor row = arange(QueryRows).view(QueryRows, 1);
            using Tensor token = arange(KeyRows).view(1, KeyRows);
            using Tensor shared = token.lt(KeyRows / 4);
            using Tensor firstHalf = row.lt(QueryRows / 2);
            using Tensor spanA = token.ge(KeyRows / 4).logical_and(token.lt(KeyRows / 2));
            using Tensor spanB = token.ge(KeyRows / 2);
            using Tensor sees = shared.logical_or(firstHalf.logical_and(spanA)).logical_or(firstHalf.logical_not().logical_and(spanB));
            mask = sees.expand(Batch, 1, QueryRows, KeyRows).contiguous();
        }
        Tensor? upstream = Training ? randn(Batch, Heads, QueryRows, HeadDim) : null;
        return new AttentionInputs(query, key, value, mask, IsCausal: false) { Upstream = upstream };
    }

    /// <summary>
    /// Runs one variant once and returns its output; for training cases, forward and backward (the gradients of
    /// query, key and value for the inputs' upstream gradient, through torch.autograd.grad so nothing accumulates
    /// between runs), returning the query's gradient.
    /// </summary>
    public Tensor Run(Variant variant, AttentionInputs inputs)
    {
        if (!Training)
            return Forward(variant, inputs);

        using var scope = NewDisposeScope();
        Tensor output = Forward(variant, inputs);
        IList<Tensor> grads = autograd.grad(new[] { output }, new[] { inputs.Query, inputs.Key, inputs.Value }, new[] { inputs.Upstream! });
        return grads[0].MoveToOuterDisposeScope();
    }

    private Tensor Forward(Variant variant, AttentionInputs inputs) => variant switch
    {
        Variant.Native => nn.functional.scaled_dot_product_attention(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_casual: inputs.IsCausal),
        Variant.Chunked => ChunkedSdpa.Chunked(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_causal: inputs.IsCausal, options: Options),
        Variant.Guard => ChunkedSdpa.Attention(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_causal: inputs.IsCausal, options: Options),
        Variant.Manual => ManualAttention(inputs),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };

    private static Tensor ManualAttention(AttentionInputs inputs)
    {
        using var scope = NewDisposeScope();
        double scale = 1.0 / Math.Sqrt(inputs.Query.shape[^1]);
        Tensor scores = inputs.Query.matmul(inputs.Key.transpose(-2, -1)).mul_(scale);
        if (inputs.Mask is not null)
            scores = scores.masked_fill(inputs.Mask.logical_not(), double.NegativeInfinity);
        Tensor weights = scores.softmax(-1);
        return weights.matmul(inputs.Value).MoveToOuterDisposeScope();
    }
}
