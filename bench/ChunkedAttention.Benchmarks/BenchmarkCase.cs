using System;
using System.Collections.Generic;
using ChunkedAttention.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention.Benchmarks;

/// <summary>One way of computing attention for a case's inputs.</summary>
internal enum Variant
{
    /// <summary>TorchSharp's scaled_dot_product_attention, called directly.</summary>
    Native,

    /// <summary><see cref="ChunkedSdpa.Chunked"/> with the case's options.</summary>
    Chunked,

    /// <summary><see cref="ChunkedSdpa.Attention"/> with the case's options (the default MPS-only options: the guard's native path).</summary>
    Guard,

    /// <summary>matmul + softmax + matmul, the way attention is written by hand in TorchSharp.</summary>
    Manual,

    /// <summary>The case's experiment (an alternative kernel, see <see cref="Experiments"/>).</summary>
    Experiment,

    /// <summary>The candidate's own native SDPA calls, recorded once and replayed back to back with nothing else.</summary>
    Floor,
}

/// <summary>Inputs of one attention call.</summary>
internal sealed record AttentionInputs(Tensor Query, Tensor Key, Tensor Value, Tensor? Mask, bool IsCausal) : IDisposable
{
    /// <summary>The output's gradient that backward starts from (training cases only).</summary>
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

/// <summary>An alternative kernel: a name and how it computes attention with a given native SDPA.</summary>
internal sealed record ExperimentKernel(string Name, Func<AttentionInputs, NativeSdpa, Tensor> Run);

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
/// <param name="MemoryBaseline">Variant whose memory the candidate's is compared with, if any.</param>
/// <param name="MemoryTarget">Largest acceptable candidate/memory-baseline ratio of peaks (of extra memory where measured), if any.</param>
internal sealed record BenchmarkCase(
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
    /// <summary>is_causal.</summary>
    public bool IsCausal { get; init; }

    /// <summary>Largest acceptable candidate/floor median ratio, if any (the floor is timed when this is set or on a device).</summary>
    public double? FloorTarget { get; init; }

    /// <summary>
    /// Forward and backward (gradients of query, key and value for the inputs' fixed upstream gradient) instead of
    /// forward under no_grad. On the CPU, memory is then compared as extra memory: the peak above the process's
    /// resident memory once the inputs exist (see the memory child in Program).
    /// </summary>
    public bool Training { get; init; }

    /// <summary>The kernel <see cref="Variant.Experiment"/> runs.</summary>
    public ExperimentKernel? Experiment { get; init; }

    /// <summary>The cases of the CPU suite (the runtime issue's targets; what README's CPU table shows).</summary>
    public static IReadOnlyList<BenchmarkCase> All => Suites.Cpu;

    /// <summary>
    /// Creates the case's inputs from a fixed seed: drawn in Float32 on the CPU, then converted and moved. Training
    /// cases' query, key and value require grad, and they get a random upstream gradient (drawn after the value, so
    /// query, key and value are the same as without it): a constant one would make every row's dO equal.
    /// </summary>
    public AttentionInputs CreateInputs(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        device ??= CPU;
        using var scope = NewDisposeScope();
        manual_seed(1234);
        Tensor Place(Tensor t) => t.to(dtype).to(device);
        Tensor query = Place(randn(Batch, Heads, QueryRows, HeadDim));
        Tensor key = Place(randn(Batch, Heads, KeyRows, HeadDim));
        Tensor value = Place(randn(Batch, Heads, KeyRows, HeadDim));
        Tensor? mask = null;
        if (RegionalMask)
        {
            // Each query row sees the shared tokens plus the span of its region, as regional guidance does.
            Tensor row = arange(QueryRows).view(QueryRows, 1);
            Tensor token = arange(KeyRows).view(1, KeyRows);
            Tensor shared = token.lt(KeyRows / 4);
            Tensor firstHalf = row.lt(QueryRows / 2);
            Tensor spanA = token.ge(KeyRows / 4).logical_and(token.lt(KeyRows / 2));
            Tensor spanB = token.ge(KeyRows / 2);
            Tensor sees = shared.logical_or(firstHalf.logical_and(spanA)).logical_or(firstHalf.logical_not().logical_and(spanB));
            mask = sees.expand(Batch, 1, QueryRows, KeyRows).contiguous().to(device);
        }

        Tensor? upstream = null;
        if (Training)
        {
            query.requires_grad_(true);
            key.requires_grad_(true);
            value.requires_grad_(true);
            upstream = Place(randn(Batch, Heads, QueryRows, HeadDim));
            scope.MoveToOuter(upstream);
        }

        scope.MoveToOuter(query, key, value);
        if (mask is not null)
        {
            scope.MoveToOuter(mask);
        }

        return new AttentionInputs(query, key, value, mask, IsCausal) { Upstream = upstream };
    }

    /// <summary>
    /// Runs one variant once and returns its output; for training cases forward and backward (the gradients of query,
    /// key and value for the inputs' upstream gradient, through torch.autograd.grad so that nothing accumulates
    /// between runs), returning the query's gradient.
    /// </summary>
    public Tensor Run(Variant variant, AttentionInputs inputs, NativeCallRecorder? floor = null)
    {
        if (variant == Variant.Floor)
        {
            return (floor ?? throw new InvalidOperationException($"{Name}: no floor recorded")).Replay();
        }

        if (!Training)
        {
            return Forward(variant, inputs, RuntimeSeam.Default);
        }

        using var scope = NewDisposeScope();
        var output = Forward(variant, inputs, RuntimeSeam.Default);
        var grads = torch.autograd.grad(new[] { output }, new[] { inputs.Query, inputs.Key, inputs.Value },
            new[] { inputs.Upstream ?? throw new InvalidOperationException($"{Name}: training inputs without an upstream gradient") });
        return scope.MoveToOuter(grads[0]);
    }

    /// <summary>The forward call of a variant, with <paramref name="native"/> as the native SDPA where the variant is chunked.</summary>
    public Tensor Forward(Variant variant, AttentionInputs inputs, NativeSdpa native) => variant switch
    {
        Variant.Native => nn.functional.scaled_dot_product_attention(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_casual: inputs.IsCausal),
        Variant.Chunked => ReferenceEquals(native, RuntimeSeam.Default)
            ? ChunkedSdpa.Chunked(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_causal: inputs.IsCausal, options: Options)
            : RuntimeSeam.Chunked(inputs, Options, native),
        Variant.Guard => ChunkedSdpa.Attention(inputs.Query, inputs.Key, inputs.Value, inputs.Mask, is_causal: inputs.IsCausal, options: Options),
        Variant.Manual => ManualAttention(inputs),
        Variant.Experiment => (Experiment ?? throw new InvalidOperationException($"{Name}: no experiment"))
            .Run(inputs, native),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };

    /// <summary>Records the native calls of the candidate (one forward call) for its floor; null when it makes none.</summary>
    public NativeCallRecorder? RecordFloor(AttentionInputs inputs)
    {
        if (Candidate is not (Variant.Chunked or Variant.Experiment) || Training)
        {
            return null;
        }

        var recorder = new NativeCallRecorder();
        using (NewDisposeScope())
        {
            Forward(Candidate, inputs, recorder.Recording);
        }

        if (recorder.Count == 0)
        {
            recorder.Dispose();
            return null;
        }

        return recorder;
    }

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
