namespace ChunkedAttention;

/// <summary>
/// Settings for <see cref="ChunkedSdpa"/>: the same settings as <see cref="ChunkedAttentionAttribute"/>.
/// Immutable once built, so one instance can be shared by every thread.
/// </summary>
/// <remarks>
/// The environment can override two settings at run time, read on every call:
/// <c>CHUNKED_ATTENTION</c> = <c>auto</c> (default) | <c>off</c> (never chunk) | <c>always</c> (chunk on any device),
/// and <c>CHUNKED_ATTENTION_CHUNK_SIZE</c> = a positive integer that replaces <see cref="ChunkSize"/>.
/// </remarks>
public sealed class ChunkedAttentionOptions
{
    /// <summary>
    /// ChunkSize when nothing else is said (the attribute's default too): 0, auto (the fewest equal chunks within the
    /// step budget; see <see cref="ChunkedSdpa.Plan"/>). Measured on an H200 (fp16) on the seed's diffusion shapes, auto
    /// ran at 1.00-1.07x native where 1024-row chunks ran at 1.07-1.71x (the number of chunks is the cost on a large
    /// GPU), and it splits only where MPS's per-array limits require it.
    /// </summary>
    public const int DefaultChunkSize = 0;

    /// <summary>Where chunking applies when nothing else is said (the attribute's default too): MPS only.</summary>
    public const AttentionDevices DefaultDevices = AttentionDevices.Mps;

    /// <summary>The attribute's defaults: ChunkSize 0 (auto), keys whole, MPS only, no score cap, no native-first attempt.</summary>
    public static ChunkedAttentionOptions Default { get; } = new();

    /// <summary>Creates options with the attribute's defaults; set properties with an object initializer.</summary>
    public ChunkedAttentionOptions()
    {
    }

    /// <summary>
    /// Creates options from explicit values. Callers before C# 9 (no init-only setters), including the
    /// generator's output for such projects, use this constructor with named arguments.
    /// </summary>
    /// <param name="chunkSize">Query rows per chunk (&gt; 0), or 0 for auto.</param>
    /// <param name="keyChunkSize">Keys per block (&gt;= 0; 0 keeps keys whole).</param>
    /// <param name="devices">Device types on which <see cref="ChunkedSdpa.Attention"/> chunks.</param>
    /// <param name="maxScoreElements">Cap on one step's score elements (&gt;= 0; 0 = no cap).</param>
    /// <param name="tryNativeFirst">Try native SDPA first and chunk only after an MPS size failure.</param>
    /// <param name="skipDeviceCheck">The caller has already checked <see cref="ChunkedSdpa.IsChunkingDevice"/>; see
    /// <see cref="SkipDeviceCheck"/>.</param>
    public ChunkedAttentionOptions(int chunkSize = DefaultChunkSize, int keyChunkSize = 0,
        AttentionDevices devices = DefaultDevices, long maxScoreElements = 0, bool tryNativeFirst = false,
        bool skipDeviceCheck = false)
    {
        ChunkSize = chunkSize;
        KeyChunkSize = keyChunkSize;
        Devices = devices;
        MaxScoreElements = maxScoreElements;
        TryNativeFirst = tryNativeFirst;
        SkipDeviceCheck = skipDeviceCheck;
    }

    /// <summary>
    /// Query rows per chunk; must be &gt;= 0. 0 (the default) is auto: the fewest equal-sized chunks whose scores fit
    /// the step budget, <see cref="MaxScoreElements"/> or, when that is 0, MPS's per-array limits (2^32 bytes,
    /// 2^31 elements) in the query's dtype; no chunking where the whole fits. &gt; 0 is a fixed number of rows,
    /// lowered for a call when <see cref="MaxScoreElements"/> requires it. Replaced by the environment variable
    /// <c>CHUNKED_ATTENTION_CHUNK_SIZE</c> when that is set.
    /// </summary>
    public int ChunkSize { get; init; } = DefaultChunkSize;

    /// <summary>
    /// Keys per block; must be &gt;= 0. 0 keeps the keys whole (only the query rows are chunked);
    /// &gt; 0 processes the keys in blocks of this size and merges them with an online softmax,
    /// which bounds the scores of one step to rows x <see cref="KeyChunkSize"/>.
    /// </summary>
    public int KeyChunkSize { get; init; }

    /// <summary>
    /// Device types on which <see cref="ChunkedSdpa.Attention"/> chunks (default <see cref="AttentionDevices.Mps"/>).
    /// <see cref="ChunkedSdpa.Chunked"/> ignores it.
    /// </summary>
    public AttentionDevices Devices { get; init; } = DefaultDevices;

    /// <summary>
    /// Cap on the score elements (batch*heads*rows*keys) one step may hold; must be &gt;= 0; 0 = no cap.
    /// The query chunk is lowered first; when even one query row with all keys exceeds the cap, the keys
    /// are split into blocks too (see <see cref="ChunkedSdpa.Plan"/> for the exact rule).
    /// </summary>
    public long MaxScoreElements { get; init; }

    /// <summary>
    /// When true, <see cref="ChunkedSdpa.Attention"/> on a device in <see cref="Devices"/> first tries
    /// native SDPA on the whole problem and chunks only when native fails with one of the size errors
    /// the MPS backend raises (see <see cref="ChunkedSdpa.NativeFailureMarkers"/>). The failure is
    /// remembered per shape, dtype and device, so later calls with that shape go straight to chunking.
    /// Default false.
    /// </summary>
    public bool TryNativeFirst { get; init; }

    /// <summary>
    /// When true, <see cref="ChunkedSdpa.Attention"/> does not check the device again: the caller has already
    /// checked <see cref="ChunkedSdpa.IsChunkingDevice"/> and only calls on a chunking device, as the generated
    /// wrapper does (the pattern of LoggerMessage's <c>SkipEnabledCheck</c>). Not an attribute setting. Default false.
    /// </summary>
    public bool SkipDeviceCheck { get; init; }
}
