using System;
using System.Collections.Generic;
using System.Globalization;
using static TorchSharp.torch;

namespace ChunkedAttention.Testing;

/// <summary>What kind of mask a case passes.</summary>
public enum MaskKind
{
    /// <summary>No mask.</summary>
    None,

    /// <summary>Random bool mask (true = may attend), about 70 % true.</summary>
    Bool,

    /// <summary>Random normal additive mask.</summary>
    Float,

    /// <summary>Bool mask that hides every key from three rows (first, middle, last).</summary>
    BoolRowsHidden,

    /// <summary>Additive mask with -inf on every key of three rows (first, middle, last).</summary>
    FloatRowsHidden,

    /// <summary>Bool mask that hides the first key block (keys 0..KeyChunk-1) and the key at 2*KeyChunk from every row.</summary>
    BoolKeysHidden,

    /// <summary>Additive mask with -inf on the same keys as <see cref="BoolKeysHidden"/>.</summary>
    FloatKeysHidden,
}

/// <summary>How query, key and value are laid out.</summary>
public enum InputLayout
{
    /// <summary>(B, H, L, E) contiguous.</summary>
    Standard,

    /// <summary>(B, H, L, E) views of (B, L, H, E) memory, as a projection's output viewed per head.</summary>
    Transposed,

    /// <summary>(H, L, E): no batch dim.</summary>
    ThreeD,

    /// <summary>(L, E): no leading dims.</summary>
    TwoD,

    /// <summary>(2, 2, H, L, E): two leading batch dims.</summary>
    FiveD,

    /// <summary>query (B, H, L, E), key (1, H, S, E), value (H, S, Ev): leading dims broadcast.</summary>
    BroadcastBatch,
}

/// <summary>
/// The sizes a case is built at. Cases are written in <see cref="Small"/> units (L = 7, S = 9, chunks of 3);
/// <see cref="Large"/> multiplies every length and chunk by <see cref="LengthFactor"/> and uses a head dim that
/// accelerators' fused kernels accept, so a device runs the kernels real models hit.
/// </summary>
/// <param name="Name">small | large.</param>
/// <param name="Batch">B.</param>
/// <param name="Heads">H (query heads unless the case says otherwise).</param>
/// <param name="HeadDim">E.</param>
/// <param name="ValueDim">Ev.</param>
/// <param name="LengthFactor">Multiplies L, S, chunk sizes and key blocks.</param>
public sealed record CaseProfile(string Name, long Batch, long Heads, long HeadDim, long ValueDim, long LengthFactor)
{
    /// <summary>The unit-test sizes: B 2, H 3, E 4, Ev 5, L 7, S 9.</summary>
    public static CaseProfile Small { get; } = new("small", 2, 3, 4, 5, 1);

    /// <summary>Device sizes: B 2, H 3, E = Ev = 64, lengths x 37 (L 259, S 333, chunks of 111, key blocks of 148).</summary>
    public static CaseProfile Large { get; } = new("large", 2, 3, 64, 64, 37);
}

/// <summary>
/// One attention call of the equality suite: shapes (in <see cref="CaseProfile.Small"/> units), the mask, the
/// arguments and the chunking settings. The runtime tests run every case on CPU in Float32 against native SDPA;
/// the device check (tools/DeviceCheck) runs them on a device in Float32, Float16 and BFloat16.
/// </summary>
public sealed record AttentionCase(string Name)
{
    /// <summary>Query length L (small units).</summary>
    public long L { get; init; } = 7;

    /// <summary>Key length S (small units).</summary>
    public long S { get; init; } = 9;

    /// <summary>Query heads; null = the profile's.</summary>
    public long? QueryHeads { get; init; }

    /// <summary>Key/value heads; null = the query heads.</summary>
    public long? KeyValueHeads { get; init; }

    /// <summary>Layout of query, key and value.</summary>
    public InputLayout Layout { get; init; } = InputLayout.Standard;

    /// <summary>The mask's kind.</summary>
    public MaskKind Mask { get; init; } = MaskKind.None;

    /// <summary>The mask's shape in symbols: B (batch), H (query heads), L, S and 1, e.g. "Bx1xLxS"; null = "LxS".</summary>
    public string? MaskShape { get; init; }

    /// <summary>A floating mask stays Float32 whatever the query's dtype (native SDPA accepts the mix).</summary>
    public bool MaskFloat32 { get; init; }

    /// <summary>is_causal.</summary>
    public bool Causal { get; init; }

    /// <summary>scale at the small profile's E = 4; null = 1/sqrt(E). Other profiles keep its ratio to the default 1/sqrt(E)
    /// (<see cref="ScaleAt"/>), so large head dims do not turn the softmax into a one-hot that only rounding decides.</summary>
    public double? Scale { get; init; }

    /// <summary>The scale passed at a profile's head dim: <see cref="Scale"/> x sqrt(4) / sqrt(E).</summary>
    public double? ScaleAt(CaseProfile profile) => Scale * 2.0 / Math.Sqrt(profile.HeadDim);

    /// <summary>enable_gqa.</summary>
    public bool Gqa { get; init; }

    /// <summary>ChunkSize (small units; 0 = auto).</summary>
    public long ChunkSize { get; init; } = 3;

    /// <summary>KeyChunkSize (small units; 0 = keys whole).</summary>
    public long KeyChunkSize { get; init; }

    /// <summary>MaxScoreElements in small units of rows x keys per score batch (scaled by the square of the length factor); 0 = no cap.</summary>
    public long MaxScoreRowsTimesKeys { get; init; }

    /// <summary>Also compare the gradients of query, key and value.</summary>
    public bool Gradients { get; init; }

    /// <summary>The rows that <see cref="MaskKind.BoolRowsHidden"/> and <see cref="MaskKind.FloatRowsHidden"/> hide.</summary>
    public static long[] HiddenRows(long length) => new[] { 0, length / 2, length - 1 };

    /// <summary>A stable seed from the name, so every case draws its own numbers on every run and machine.</summary>
    public ulong Seed
    {
        get
        {
            ulong hash = 14695981039346656037;
            foreach (var c in Name)
            {
                hash = (hash ^ c) * 1099511628211;
            }

            return hash % 1_000_000_007;
        }
    }

    /// <summary>The options the chunked call runs under, at a profile's sizes (Devices = All, so the guard chunks too).</summary>
    public ChunkedAttentionOptions Options(CaseProfile profile) => new()
    {
        ChunkSize = (int)(ChunkSize * profile.LengthFactor),
        KeyChunkSize = (int)(KeyChunkSize * profile.LengthFactor),
        MaxScoreElements = MaxScoreRowsTimesKeys * profile.LengthFactor * profile.LengthFactor * ScoreBatch(profile),
        Devices = AttentionDevices.All,
    };

    /// <summary>batch x heads of the scores at a profile's sizes.</summary>
    public long ScoreBatch(CaseProfile profile) => Layout switch
    {
        InputLayout.TwoD => 1,
        InputLayout.ThreeD => Heads(profile),
        InputLayout.FiveD => 4 * Heads(profile),
        _ => profile.Batch * Heads(profile),
    };

    /// <summary>The query heads at a profile's sizes.</summary>
    public long Heads(CaseProfile profile) => QueryHeads ?? profile.Heads;

    /// <summary>Builds the inputs on <paramref name="device"/> in <paramref name="dtype"/> (drawn in Float32 on the CPU, then converted and moved).</summary>
    public CaseTensors Build(CaseProfile profile, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(Seed);
        var l = L * profile.LengthFactor;
        var s = S * profile.LengthFactor;
        var hq = Heads(profile);
        var hkv = KeyValueHeads ?? hq;
        var b = profile.Batch;
        var e = profile.HeadDim;
        var ev = profile.ValueDim;

        Tensor q, k, v;
        switch (Layout)
        {
            case InputLayout.Transposed:
                q = randn(new[] { b, l, hq * e }, generator: g).view(b, l, hq, e);
                k = randn(new[] { b, s, hkv * e }, generator: g).view(b, s, hkv, e);
                v = randn(new[] { b, s, hkv * ev }, generator: g).view(b, s, hkv, ev);
                break;
            case InputLayout.ThreeD:
                (q, k, v) = (randn(new[] { hq, l, e }, generator: g), randn(new[] { hkv, s, e }, generator: g), randn(new[] { hkv, s, ev }, generator: g));
                break;
            case InputLayout.TwoD:
                (q, k, v) = (randn(new[] { l, e }, generator: g), randn(new[] { s, e }, generator: g), randn(new[] { s, ev }, generator: g));
                break;
            case InputLayout.FiveD:
                (q, k, v) = (randn(new[] { 2, 2, hq, l, e }, generator: g), randn(new[] { 2, 2, hkv, s, e }, generator: g), randn(new[] { 2, 2, hkv, s, ev }, generator: g));
                break;
            case InputLayout.BroadcastBatch:
                (q, k, v) = (randn(new[] { b, hq, l, e }, generator: g), randn(new[] { 1, hkv, s, e }, generator: g), randn(new[] { hkv, s, ev }, generator: g));
                break;
            default:
                (q, k, v) = (randn(new[] { b, hq, l, e }, generator: g), randn(new[] { b, hkv, s, e }, generator: g), randn(new[] { b, hkv, s, ev }, generator: g));
                break;
        }

        Tensor? mask = Mask == MaskKind.None ? null : MakeMask(g, profile, l, s, hq);

        Tensor Place(Tensor t) => t.to(dtype).to(device);
        q = Place(q);
        k = Place(k);
        v = Place(v);
        if (Layout == InputLayout.Transposed)
        {
            q = q.transpose(1, 2);
            k = k.transpose(1, 2);
            v = v.transpose(1, 2);
        }

        if (mask is not null)
        {
            mask = mask.dtype == ScalarType.Bool || MaskFloat32 ? mask.to(device) : Place(mask);
        }

        var result = new CaseTensors(q, k, v, mask);
        result.MoveToOuter(scope);
        return result;
    }

    private Tensor MakeMask(Generator g, CaseProfile profile, long l, long s, long hq)
    {
        var shape = ResolveShape(MaskShape ?? "LxS", profile.Batch, hq, l, s);
        var keyBlock = Math.Max(1, KeyChunkSize * profile.LengthFactor);
        switch (Mask)
        {
            case MaskKind.Bool:
                return rand(shape, generator: g).gt(0.3);
            case MaskKind.Float:
                return randn(shape, generator: g);
            case MaskKind.BoolRowsHidden:
            case MaskKind.FloatRowsHidden:
            {
                var isBool = Mask == MaskKind.BoolRowsHidden;
                var mask = isBool ? ones(shape, ScalarType.Bool) : randn(shape, generator: g);
                foreach (var row in HiddenRows(shape[^2]))
                {
                    mask[TensorIndex.Ellipsis, row, TensorIndex.Colon] = isBool ? tensor(false) : tensor(float.NegativeInfinity);
                }

                return mask;
            }

            case MaskKind.BoolKeysHidden:
            case MaskKind.FloatKeysHidden:
            {
                var isBool = Mask == MaskKind.BoolKeysHidden;
                var mask = isBool ? ones(shape, ScalarType.Bool) : randn(shape, generator: g);
                var hidden = isBool ? tensor(false) : tensor(float.NegativeInfinity);
                mask[TensorIndex.Ellipsis, TensorIndex.Slice(0, keyBlock)] = hidden;
                if (2 * keyBlock < shape[^1])
                {
                    mask[TensorIndex.Ellipsis, 2 * keyBlock] = hidden;
                }

                return mask;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(Mask), Mask, "no mask to make");
        }
    }

    /// <summary>"Bx1xLxS" to sizes.</summary>
    public static long[] ResolveShape(string symbols, long batch, long heads, long l, long s)
    {
        var parts = symbols.Split('x');
        var shape = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            shape[i] = parts[i] switch
            {
                "B" => batch,
                "H" => heads,
                "L" => l,
                "S" => s,
                var n => long.Parse(n, CultureInfo.InvariantCulture),
            };
        }

        return shape;
    }

    /// <summary>The chunked call of this case: <see cref="ChunkedSdpa.Chunked"/> with the case's arguments and options.</summary>
    public Tensor RunChunked(CaseTensors t, CaseProfile profile) =>
        ChunkedSdpa.Chunked(t.Query, t.Key, t.Value, t.Mask, 0.0, Causal, ScaleAt(profile), Gqa, Options(profile));

    /// <summary>The guarded call: <see cref="ChunkedSdpa.Attention"/> with <paramref name="devices"/> as the chunking devices.</summary>
    public Tensor RunAttention(CaseTensors t, CaseProfile profile, AttentionDevices devices) =>
        ChunkedSdpa.Attention(t.Query, t.Key, t.Value, t.Mask, 0.0, Causal, ScaleAt(profile), Gqa, WithDevices(Options(profile), devices));

    private static ChunkedAttentionOptions WithDevices(ChunkedAttentionOptions o, AttentionDevices devices) => new()
    {
        ChunkSize = o.ChunkSize,
        KeyChunkSize = o.KeyChunkSize,
        MaxScoreElements = o.MaxScoreElements,
        Devices = devices,
    };

    /// <summary>Native SDPA with every adaptation done by hand (<see cref="ReferenceAttention.Native"/>).</summary>
    public Tensor RunNative(CaseTensors t, CaseProfile profile) =>
        ReferenceAttention.Native(t.Query, t.Key, t.Value, t.Mask, 0.0, Causal, ScaleAt(profile), Gqa);

    /// <summary>The exact result in Float64 on the CPU (<see cref="ReferenceAttention.Exact"/>).</summary>
    public Tensor RunExact(CaseTensors t, CaseProfile profile) =>
        ReferenceAttention.Exact(t.Query, t.Key, t.Value, t.Mask, Causal, ScaleAt(profile), Gqa);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A case's inputs on one device in one dtype.</summary>
public sealed record CaseTensors(Tensor Query, Tensor Key, Tensor Value, Tensor? Mask) : IDisposable
{
    /// <summary>Moves the tensors out of <paramref name="scope"/> into the caller's.</summary>
    public void MoveToOuter(TorchSharp.DisposeScope scope)
    {
        scope.MoveToOuter(Query, Key, Value);
        if (Mask is not null)
        {
            scope.MoveToOuter(Mask);
        }
    }

    /// <summary>Leaves that require grad, for a gradient comparison (copies; the same values).</summary>
    public CaseTensors WithGrad() => new(Leaf(Query), Leaf(Key), Leaf(Value), Mask);

    private static Tensor Leaf(Tensor t) => t.detach().clone().requires_grad_(true);

    /// <inheritdoc/>
    public void Dispose()
    {
        Query.Dispose();
        Key.Dispose();
        Value.Dispose();
        Mask?.Dispose();
    }
}
