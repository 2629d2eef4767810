using System;
using System.Globalization;
using static TorchSharp.torch;

namespace ChunkedAttention.Validation;

/// <summary>
/// Every argument check of an attention call, done before any tensor work. The rules follow what
/// native SDPA accepts (leading dims broadcast, bool / float32 / query-dtype masks), the messages say
/// which argument is wrong, the shapes involved and what to change.
/// </summary>
internal static class AttentionValidator
{
    private const string QueryLayout = "(N..., L, E)";
    private const string KeyLayout = "(N..., S, E)";
    private const string ValueLayout = "(N..., S, Ev)";

    public static AttentionProblem Validate(Tensor query, Tensor key, Tensor value, Tensor? attnMask,
        double p, bool isCausal, double? scale, bool enableGqa)
    {
        ValidateQueryKey(query, key);
        CheckTensor(value, nameof(value), ValueLayout);

        var qs = query.shape;
        var ks = key.shape;
        var vs = value.shape;
        string Shapes3() => $"query {Shapes.Format(qs)}, key {Shapes.Format(ks)}, value {Shapes.Format(vs)}";

        if (!IsFloating(query.dtype))
        {
            throw new ArgumentException(
                $"query must be a floating-point tensor (Float16, BFloat16, Float32 or Float64) but has dtype {query.dtype} (shape {Shapes.Format(qs)}). Convert it, e.g. query.to(ScalarType.Float32).",
                nameof(query));
        }

        if (key.dtype != query.dtype || value.dtype != query.dtype)
        {
            var name = key.dtype != query.dtype ? nameof(key) : nameof(value);
            throw new ArgumentException(
                $"query, key and value must have the same dtype, as native SDPA requires, but query is {query.dtype}, key is {key.dtype} and value is {value.dtype} ({Shapes3()}). Convert {name} to {query.dtype}.",
                name);
        }

        CheckDevice(query, key, nameof(key), Shapes3);
        CheckDevice(query, value, nameof(value), Shapes3);

        if (ks[^1] != qs[^1])
        {
            throw new ArgumentException(
                $"key's last dim E must equal query's: query has E = {qs[^1]}, key has E = {ks[^1]} ({Shapes3()}). Project key to the query's head dim.",
                nameof(key));
        }

        if (vs[^2] != ks[^2])
        {
            throw new ArgumentException(
                $"value must have as many rows as key (S): key has S = {ks[^2]}, value has S = {vs[^2]} ({Shapes3()}). Pass the key and value of the same tokens.",
                nameof(value));
        }

        long keyRepeats = 1, valueRepeats = 1;
        var keyLeading = Shapes.Leading(ks);
        var valueLeading = Shapes.Leading(vs);
        if (enableGqa)
        {
            if (qs.Length < 3 || ks.Length < 3 || vs.Length < 3)
            {
                throw new ArgumentException(
                    $"enable_gqa needs a heads dim (-3) on query, key and value, so each must have at least 3 dimensions ({Shapes3()}). Pass enable_gqa: false for inputs without heads.",
                    qs.Length < 3 ? nameof(query) : ks.Length < 3 ? nameof(key) : nameof(value));
            }

            var hq = qs[^3];
            keyRepeats = GqaRepeats(hq, ks[^3], nameof(key), Shapes3);
            valueRepeats = GqaRepeats(hq, vs[^3], nameof(value), Shapes3);
            keyLeading[^1] = hq;
            valueLeading[^1] = hq;
        }

        var queryLeading = Shapes.Leading(qs);
        _ = Shapes.Broadcast(queryLeading, keyLeading) ?? throw new ArgumentException(
            $"key's leading dims {Shapes.Format(Shapes.Leading(ks))} do not broadcast with query's {Shapes.Format(queryLeading)} ({Shapes3()}). " +
            "Make each of key's leading dims (batch..., heads) equal to query's or 1, as native SDPA requires" +
            (enableGqa ? "." : "; for fewer key/value heads than query heads pass enable_gqa: true."),
            nameof(key));
        // The scores' leading dims, computed the one way the planner computes them for ShouldChunk and Plan.
        var scoreLeading = Shapes.ScoreLeading(qs, ks);
        var outputLeading = Shapes.Broadcast(scoreLeading, valueLeading) ?? throw new ArgumentException(
            $"value's leading dims {Shapes.Format(Shapes.Leading(vs))} do not broadcast with query's and key's {Shapes.Format(scoreLeading)} ({Shapes3()}). " +
            "Make each of value's leading dims (batch..., heads) equal to those of query and key, or 1, as native SDPA requires.",
            nameof(value));

        var queryLength = qs[^2];
        var keyLength = ks[^2];
        if (attnMask is not null)
        {
            CheckMask(query, attnMask, scoreLeading, queryLength, keyLength, Shapes3);
        }

        if (double.IsNaN(p) || p < 0 || p >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p,
                FormattableString.Invariant($"p (dropout probability) must be in [0, 1) but is {p}. Use 0 for no dropout."));
        }

        if (scale is { } s && (double.IsNaN(s) || double.IsInfinity(s)))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), s,
                FormattableString.Invariant($"scale must be a finite number but is {s}. Pass null for the default 1/sqrt(E)."));
        }

        var headDim = qs[^1];
        var defaultScale = headDim == 0 ? double.PositiveInfinity : 1.0 / Math.Sqrt(headDim);
        var outputShape = new long[outputLeading.Length + 2];
        outputLeading.CopyTo(outputShape, 0);
        outputShape[^2] = queryLength;
        outputShape[^1] = vs[^1];

        return new AttentionProblem(query, key, value, attnMask, Dropout: p, IsCausal: isCausal,
            Scale: scale ?? defaultScale, ScaleIsDefault: scale is null, KeyRepeats: keyRepeats, ValueRepeats: valueRepeats,
            OutputShape: outputShape, ScoreBatch: Shapes.Product(scoreLeading));
    }

    /// <summary>The query and key checks <see cref="ChunkedSdpa.Plan"/> and <see cref="ChunkedSdpa.ShouldChunk"/> need.</summary>
    public static void ValidateQueryKey(Tensor query, Tensor key)
    {
        CheckTensor(query, nameof(query), QueryLayout);
        CheckTensor(key, nameof(key), KeyLayout);
    }

    public static bool IsFloating(ScalarType t) =>
        t is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;

    /// <summary>A tensor argument that must not be null (only attn_mask may be).</summary>
    public static void CheckPresent(Tensor? t, string name, string layout = QueryLayout)
    {
        if (t is null)
        {
            throw new ArgumentNullException(name,
                $"{name} must be a tensor of shape {layout} but is null. Pass a {name} tensor; only attn_mask may be null.");
        }
    }

    /// <summary>Present and at least (L, E): every other check reads the last two dims.</summary>
    private static void CheckTensor(Tensor? t, string name, string layout)
    {
        CheckPresent(t, name, layout);

        if (t!.dim() < 2)
        {
            throw new ArgumentException(
                $"{name} must have at least 2 dimensions {layout} but has shape {Shapes.Format(t)}. Add the missing dims, e.g. with unsqueeze.",
                name);
        }
    }

    private static void CheckDevice(Tensor query, Tensor other, string name, Func<string> shapes)
    {
        if (!SameDevice(query, other))
        {
            throw new ArgumentException(
                $"{name} must be on the query's device {query.device} but is on {other.device} ({shapes()}). Move it with .to(query.device).",
                name);
        }
    }

    private static bool SameDevice(Tensor a, Tensor b) =>
        a.device_type == b.device_type && a.device_index == b.device_index;

    private static long GqaRepeats(long queryHeads, long heads, string name, Func<string> shapes)
    {
        if (heads == 0 || queryHeads % heads != 0)
        {
            throw new ArgumentException(
                $"With enable_gqa the query heads must be a multiple of the {name} heads, but query has Hq = {queryHeads} and {name} has {heads} heads ({shapes()}). Use a {name} head count that divides {queryHeads}.",
                name);
        }

        return queryHeads / heads;
    }

    private static void CheckMask(Tensor query, Tensor mask, long[] scoreLeading, long queryLength, long keyLength, Func<string> shapes)
    {
        const string name = "attn_mask";
        var ms = mask.shape;
        // Native SDPA adds the mask into the q·kᵀ scores in place, so it must broadcast into their shape
        // (the query/key leading dims), not grow it.
        var target = new long[scoreLeading.Length + 2];
        scoreLeading.CopyTo(target, 0);
        target[^2] = queryLength;
        target[^1] = keyLength;

        if (ms.Length < 2)
        {
            throw new ArgumentException(
                $"attn_mask must have at least 2 dimensions (L, S) = ({queryLength}, {keyLength}) but has shape {Shapes.Format(ms)} ({shapes()}). Use shape (L, S), (1, S) or one that broadcasts to {Shapes.Format(target)}.",
                name);
        }

        if (mask.dtype != ScalarType.Bool && mask.dtype != ScalarType.Float32 && mask.dtype != query.dtype)
        {
            throw new ArgumentException(
                $"attn_mask must be bool (true = may attend), Float32 or the query's dtype {query.dtype}, as native SDPA requires, but is {mask.dtype} (shape {Shapes.Format(ms)}). Convert it, e.g. mask.to(ScalarType.Bool) or mask.to({query.dtype}).",
                name);
        }

        if (!SameDevice(query, mask))
        {
            throw new ArgumentException(
                $"attn_mask must be on the query's device {query.device} but is on {mask.device} (shape {Shapes.Format(ms)}). Move it with .to(query.device).",
                name);
        }

        var broadcast = ms.Length <= target.Length ? Shapes.Broadcast(ms, target) : null;
        if (broadcast is null || !broadcast.AsSpan().SequenceEqual(target))
        {
            throw new ArgumentException(
                $"attn_mask of shape {Shapes.Format(ms)} does not broadcast to the scores' shape (N..., Hq, L, S) = {Shapes.Format(target)} ({shapes()}). " +
                $"Reshape the mask so that each dim, aligned from the right, equals the scores' dim or is 1, with no more dims than the scores: e.g. (L, S) = ({queryLength}, {keyLength}), (N, 1, L, S) or (N, 1, 1, S).",
                name);
        }
    }
}
