using System;
using System.Collections.Generic;
using ChunkedAttention.Guard;
using ChunkedAttention.Kernels;
using ChunkedAttention.Kernels.Training;
using ChunkedAttention.Planning;
using ChunkedAttention.Validation;
using TorchSharp;
using static TorchSharp.torch;

namespace ChunkedAttention;

/// <summary>
/// Scaled dot-product attention computed in query chunks (and optionally key blocks), with the semantics of
/// PyTorch's <c>torch.nn.functional.scaled_dot_product_attention</c>: the same results as native SDPA, but one
/// step never holds more than <see cref="ChunkPlan.MaxScoreElements"/> scores. This keeps Apple's MPS backend
/// under its per-array limits (2^32 bytes, 2^31 elements) on long sequences.
/// </summary>
/// <remarks>
/// <para>Shapes: query (N..., Hq, L, E), key (N..., Hkv, S, E), value (N..., Hkv, S, Ev); any number of leading
/// dims, including none. Leading dims broadcast as in native SDPA. Result (N..., Hq, L, Ev), the query's dtype and
/// device.</para>
/// <para>Beyond what TorchSharp's own <c>scaled_dot_product_attention</c> offers, every method here accepts
/// <c>scale</c>, <c>enable_gqa</c>, and <c>is_causal</c> together with <c>attn_mask</c> (both apply).</para>
/// <para>All methods are thread-safe. Bad input throws <see cref="ArgumentException"/> (or
/// <see cref="ArgumentOutOfRangeException"/>) before any work; an invalid environment override throws
/// <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public static class ChunkedSdpa
{
    /// <summary>
    /// The message fragments that make <see cref="ChunkedAttentionOptions.TryNativeFirst"/> retry a failed native
    /// call in chunks: the errors MPS raises for a single call that is too large ("Placeholder shape mismatch",
    /// "MPSNDArray" / "NDArray" size assertions such as "total bytes of NDArray &gt; 2**32", "Invalid buffer size").
    /// Any other exception propagates unchanged.
    /// </summary>
    public static IReadOnlyList<string> NativeFailureMarkers { get; } = Array.AsReadOnly(NativeFailureCache.Markers);

    /// <summary>
    /// Device-guarded attention: computes in chunks only where <see cref="ShouldChunk"/> says so, else makes one
    /// native SDPA call (with <paramref name="scale"/>, <paramref name="enable_gqa"/> and causal + mask adapted).
    /// </summary>
    /// <param name="query">(N..., Hq, L, E), floating point.</param>
    /// <param name="key">(N..., Hkv, S, E), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="value">(N..., Hkv, S, Ev), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="attn_mask">Optional bool mask (true = may attend) or floating mask (added to the scores; Float32 or
    /// the query's dtype), of any rank &gt;= 2 that broadcasts to (N..., Hq, L, S), e.g. (L, S) or (N, 1, 1, S).</param>
    /// <param name="p">Dropout probability in [0, 1), applied to the attention weights.</param>
    /// <param name="is_causal">Top-left causal mask as PyTorch: row i attends keys j &lt;= i, also when L != S.
    /// Combined with <paramref name="attn_mask"/> when both are given.</param>
    /// <param name="scale">Factor applied to q·kᵀ; null = 1/sqrt(E).</param>
    /// <param name="enable_gqa">Grouped-query attention: Hq must be a multiple of Hkv; each key/value head serves
    /// Hq/Hkv consecutive query heads (PyTorch's <c>repeat_interleave</c> on dim -3).</param>
    /// <param name="options">Chunking settings; null = <see cref="ChunkedAttentionOptions.Default"/>.</param>
    /// <returns>The attention result (N..., Hq, L, Ev).</returns>
    /// <remarks>
    /// With <see cref="ChunkedAttentionOptions.TryNativeFirst"/>, on a device in
    /// <see cref="ChunkedAttentionOptions.Devices"/> the whole problem goes to native SDPA first; when that fails with
    /// one of the <see cref="NativeFailureMarkers"/>, the call is computed in chunks and the shape (with dtype and
    /// device) is remembered, so later calls with it chunk at once.
    /// </remarks>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit together; the message names the
    /// argument and the shapes.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/>, <paramref name="scale"/> or a setting of
    /// <paramref name="options"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">CHUNKED_ATTENTION or CHUNKED_ATTENTION_CHUNK_SIZE holds an invalid value.</exception>
    public static Tensor Attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
        double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
        ChunkedAttentionOptions? options = null) =>
        Run(Route.Guarded, query, key, value, attn_mask, p, is_causal, scale, enable_gqa, options);

    /// <summary>
    /// Always chunked, whatever the device and whatever <c>CHUNKED_ATTENTION</c> says: the query rows in chunks of
    /// the effective chunk size, and the keys in blocks when <see cref="ChunkedAttentionOptions.KeyChunkSize"/> or
    /// <see cref="ChunkedAttentionOptions.MaxScoreElements"/> asks for them. Follows <see cref="Plan"/> exactly.
    /// </summary>
    /// <param name="query">(N..., Hq, L, E), floating point.</param>
    /// <param name="key">(N..., Hkv, S, E), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="value">(N..., Hkv, S, Ev), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="attn_mask">Optional bool or floating mask broadcasting to (N..., Hq, L, S); see <see cref="Attention"/>.</param>
    /// <param name="p">Dropout probability in [0, 1).</param>
    /// <param name="is_causal">Top-left causal mask; each chunk gets the band at its own row offset.</param>
    /// <param name="scale">Factor applied to q·kᵀ; null = 1/sqrt(E).</param>
    /// <param name="enable_gqa">Grouped-query attention (Hq a multiple of Hkv).</param>
    /// <param name="options">Chunking settings; null = <see cref="ChunkedAttentionOptions.Default"/>.
    /// <see cref="ChunkedAttentionOptions.Devices"/> and <see cref="ChunkedAttentionOptions.TryNativeFirst"/> are ignored here.</param>
    /// <returns>The attention result (N..., Hq, L, Ev), equal to native SDPA's (Float32: within 1e-5).</returns>
    /// <remarks>
    /// Query chunks call native SDPA on slices (views, no copies) and join the results. Key blocks use an online
    /// softmax (sums in Float32 for Float16/BFloat16 inputs) with dropout applied to the numerator only. When
    /// gradients are needed (grad mode on and query, key, value or a floating mask requires grad) key blocks, and
    /// query chunks wherever native SDPA has no fused backward (MPS, CPU, Float64; CUDA's fused kernels already save
    /// only row statistics per chunk), run as one custom autograd function instead: forward keeps only the output and
    /// each row's log-sum-exp, backward recomputes each step's scores, so training too holds one step's scores at a time.
    /// Its dropout keep-mask is a hash of the score position and a per-call key (the same in forward and backward);
    /// a floating mask that requires grad gets its gradient; double backward is not supported.
    /// </remarks>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit together.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/>, <paramref name="scale"/> or a setting is out of range.</exception>
    /// <exception cref="InvalidOperationException">CHUNKED_ATTENTION_CHUNK_SIZE or CHUNKED_ATTENTION holds an invalid value.</exception>
    public static Tensor Chunked(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
        double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
        ChunkedAttentionOptions? options = null) =>
        Run(Route.Chunked, query, key, value, attn_mask, p, is_causal, scale, enable_gqa, options);

    /// <summary>
    /// One native SDPA call on the whole problem, never chunked, with what TorchSharp's own SDPA lacks adapted:
    /// <paramref name="scale"/>, <paramref name="enable_gqa"/>, and <paramref name="is_causal"/> together with
    /// <paramref name="attn_mask"/>. Validated like <see cref="Attention"/>. The generated wrapper calls it off the
    /// chunking devices for the calls <see cref="IsNativeCall"/> rules out.
    /// </summary>
    /// <param name="query">(N..., Hq, L, E), floating point.</param>
    /// <param name="key">(N..., Hkv, S, E), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="value">(N..., Hkv, S, Ev), same dtype and device as <paramref name="query"/>.</param>
    /// <param name="attn_mask">Optional bool or floating mask broadcasting to (N..., Hq, L, S); see <see cref="Attention"/>.</param>
    /// <param name="p">Dropout probability in [0, 1).</param>
    /// <param name="is_causal">Top-left causal mask; combined with <paramref name="attn_mask"/> when both are given.</param>
    /// <param name="scale">Factor applied to q·kᵀ; null = 1/sqrt(E).</param>
    /// <param name="enable_gqa">Grouped-query attention (Hq a multiple of Hkv).</param>
    /// <returns>The attention result (N..., Hq, L, Ev).</returns>
    /// <exception cref="ArgumentException">Shapes, dtypes or devices do not fit together.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> or <paramref name="scale"/> is out of range.</exception>
    public static Tensor Native(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
        double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false) =>
        Run(Route.Native, query, key, value, attn_mask, p, is_causal, scale, enable_gqa, options: null);

    /// <summary>
    /// The cheap half of the guard, for generated code: whether the query's device is one where chunking applies
    /// (its type is in <see cref="ChunkedAttentionOptions.Devices"/>; any device when CHUNKED_ATTENTION=always,
    /// none when =off). Reads no shapes and plans nothing; <see cref="Attention"/> called with
    /// <see cref="ChunkedAttentionOptions.SkipDeviceCheck"/> then decides the rest once.
    /// </summary>
    /// <param name="query">The query; only its device is read.</param>
    /// <param name="options">Chunking settings; null = <see cref="ChunkedAttentionOptions.Default"/>.</param>
    /// <returns>True when the call may chunk on this device.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="query"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting of <paramref name="options"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">CHUNKED_ATTENTION holds an invalid value.</exception>
    public static bool IsChunkingDevice(Tensor query, ChunkedAttentionOptions? options = null)
    {
        AttentionValidator.CheckPresent(query, nameof(query));
        var o = OptionsValidator.Validate(options);
        return DeviceGuard.Applies(query, o.Devices, EnvironmentOverrides.ReadMode());
    }

    /// <summary>
    /// Whether TorchSharp's own <c>scaled_dot_product_attention</c> computes this call as PyTorch does: no
    /// <paramref name="scale"/>, no <paramref name="enable_gqa"/>, and not <paramref name="is_causal"/> together with
    /// <paramref name="attn_mask"/> (TorchSharp throws there). Otherwise <see cref="Native"/> adapts the call.
    /// </summary>
    /// <param name="attn_mask">The mask the call passes, or null.</param>
    /// <param name="is_causal">Whether the call is causal.</param>
    /// <param name="scale">The call's scale; null = 1/sqrt(E).</param>
    /// <param name="enable_gqa">Whether the call asks for grouped-query attention.</param>
    /// <returns>True when the call can go to TorchSharp's SDPA unchanged.</returns>
    public static bool IsNativeCall(Tensor? attn_mask, bool is_causal, double? scale, bool enable_gqa) =>
        NativeKernel.RunsAsIs(attn_mask is not null, is_causal, scale is not null, enable_gqa);

    /// <summary>
    /// Whether <see cref="Attention"/> would chunk: the query's device is in
    /// <see cref="ChunkedAttentionOptions.Devices"/> (any device when CHUNKED_ATTENTION=always, none when =off)
    /// and the work splits into more than one step (L longer than the effective chunk size, or S longer than the
    /// key block; see <see cref="Plan"/>).
    /// </summary>
    /// <param name="query">The query (N..., Hq, L, E).</param>
    /// <param name="key">The key (N..., Hkv, S, E).</param>
    /// <param name="options">Chunking settings; null = <see cref="ChunkedAttentionOptions.Default"/>.</param>
    /// <returns>True when chunking applies.</returns>
    /// <exception cref="ArgumentException">query or key is null or has fewer than 2 dimensions.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting of <paramref name="options"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">An environment override holds an invalid value.</exception>
    public static bool ShouldChunk(Tensor query, Tensor key, ChunkedAttentionOptions? options = null)
    {
        var o = OptionsValidator.Validate(options);
        AttentionValidator.ValidateQueryKey(query, key);
        var environment = EnvironmentOverrides.Read();
        return DeviceGuard.Applies(query, o.Devices, environment.Mode) && PlanFor(query, key, o, environment).Chunked;
    }

    /// <summary>
    /// What <see cref="Chunked"/> does for these shapes: rows per query chunk, keys per block, their counts, and
    /// the largest number of score elements (batch*heads*rows*keys) any one step holds.
    /// </summary>
    /// <param name="query">The query (N..., Hq, L, E).</param>
    /// <param name="key">The key (N..., Hkv, S, E).</param>
    /// <param name="options">Chunking settings; null = <see cref="ChunkedAttentionOptions.Default"/>.</param>
    /// <returns>The plan. <see cref="ChunkPlan.MaxScoreElements"/> is exact without <c>is_causal</c>; causal calls
    /// skip the keys above the diagonal and so hold at most that many.</returns>
    /// <remarks>
    /// With BH = product of the scores' leading dims (batch x heads) and cap = MaxScoreElements:
    /// <list type="number">
    /// <item>keys = min(KeyChunkSize, S) when KeyChunkSize &gt; 0, else all S keys.</item>
    /// <item>ChunkSize &gt; 0 (or CHUNKED_ATTENTION_CHUNK_SIZE set): rows = min(ChunkSize, L); if cap &gt; 0 and
    /// BH*rows*keys &gt; cap, rows is lowered to cap / (BH*keys).</item>
    /// <item>ChunkSize = 0 (auto): the fewest equal chunks whose BH*rows*keys fits the budget: cap, or when cap is 0
    /// MPS's per-array limit in the query's dtype, min(2^31, 2^32 bytes / element size) elements (2^31 for
    /// Float16/BFloat16, 2^30 for Float32). No chunking where the whole problem fits; 4096 rows under a 3000-row
    /// limit become two chunks of 2048.</item>
    /// <item>If even one row exceeds the budget (BH*keys &gt; budget), the keys are split too. With KeyChunkSize = 0 the
    /// step is made square-ish: rows = min(rows, floor(sqrt(budget / BH))), keys = budget / (BH*rows) (auto evens both
    /// out). With an explicit KeyChunkSize the budget wins: rows = 1, keys = budget / BH.</item>
    /// <item>Rows and keys never go below 1, so when the budget is below BH a step holds BH elements.</item>
    /// </list>
    /// </remarks>
    /// <exception cref="ArgumentException">query or key is null or has fewer than 2 dimensions.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting of <paramref name="options"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">CHUNKED_ATTENTION_CHUNK_SIZE holds an invalid value.</exception>
    public static ChunkPlan Plan(Tensor query, Tensor key, ChunkedAttentionOptions? options = null)
    {
        var o = OptionsValidator.Validate(options);
        AttentionValidator.ValidateQueryKey(query, key);
        return PlanFor(query, key, o, EnvironmentOverrides.Read());
    }

    /// <summary>
    /// The one path of every attention entry: validate everything before any work, then (for the routes that may
    /// chunk) read the environment once, decide the device once and plan once, then run.
    /// </summary>
    private static Tensor Run(Route route, Tensor query, Tensor key, Tensor value, Tensor? attnMask, double p,
        bool isCausal, double? scale, bool enableGqa, ChunkedAttentionOptions? options)
    {
        var hooks = KernelHooks.Current;
        var settings = route == Route.Native ? null : OptionsValidator.Validate(options);
        var problem = AttentionValidator.Validate(query, key, value, attnMask, p, isCausal, scale, enableGqa);
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(settings is null ? NativeKernel.Run(problem, hooks) : Decide(route, problem, settings, hooks));
    }

    private static Tensor Decide(Route route, AttentionProblem problem, ChunkedAttentionOptions options, KernelHooks hooks)
    {
        var environment = EnvironmentOverrides.Read();
        var guarded = route == Route.Guarded;
        if (guarded && !options.SkipDeviceCheck && !DeviceGuard.Applies(problem.Query, options.Devices, environment.Mode))
        {
            return NativeKernel.Run(problem, hooks);
        }

        var plan = PlanFor(problem, options, environment);
        if (guarded && options.TryNativeFirst && !hooks.FailureCache.HasFailed(problem))
        {
            return NativeFirst(problem, plan, hooks);
        }

        return plan.Chunked ? RunPlan(problem, plan, hooks) : NativeKernel.Run(problem, hooks);
    }

    /// <summary>The plan <see cref="Chunked"/> follows for a validated problem.</summary>
    internal static ChunkPlan PlanFor(AttentionProblem problem, ChunkedAttentionOptions options, EnvironmentOverrides environment) =>
        ChunkPlanner.Plan(problem.ScoreBatch, problem.QueryLength, problem.KeyLength, problem.DType, options, environment);

    private static ChunkPlan PlanFor(Tensor query, Tensor key, ChunkedAttentionOptions options, EnvironmentOverrides environment) =>
        ChunkPlanner.Plan(Shapes.ScoreBatch(query.shape, key.shape), query.size(-2), key.size(-2), query.dtype, options, environment);

    private static Tensor RunPlan(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks) =>
        plan.Chunked && TrainingKernel.Applies(problem, plan) ? TrainingKernel.Run(problem, plan, hooks)
        : plan.KeyBlocks > 1 ? KeyBlockKernel.Run(problem, plan, hooks)
        : QueryChunkKernel.Run(problem, plan, hooks);

    /// <summary>
    /// <see cref="ChunkedAttentionOptions.TryNativeFirst"/>: one native call; on an MPS size error, remember the
    /// shape and compute in chunks instead. Other errors propagate.
    /// </summary>
    private static Tensor NativeFirst(AttentionProblem problem, ChunkPlan plan, KernelHooks hooks)
    {
        try
        {
            using var attempt = NewDisposeScope();
            return attempt.MoveToOuter(NativeKernel.Run(problem, hooks));
        }
        catch (Exception e) when (NativeFailureCache.IsSizeFailure(e))
        {
            hooks.FailureCache.RecordFailure(problem);
            return RunPlan(problem, plan, hooks);
        }
    }

    /// <summary>Which public entry a call came through.</summary>
    private enum Route
    {
        /// <summary><see cref="Attention"/>: chunks where the guard and the plan say so.</summary>
        Guarded,

        /// <summary><see cref="Chunked"/>: follows the plan on any device.</summary>
        Chunked,

        /// <summary><see cref="Native"/>: one native call with adaptations.</summary>
        Native,
    }
}
