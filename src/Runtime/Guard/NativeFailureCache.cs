using System;
using System.Collections.Concurrent;
using System.Text;
using ChunkedAttention.Validation;

namespace ChunkedAttention.Guard;

/// <summary>
/// For <see cref="ChunkedAttentionOptions.TryNativeFirst"/>: recognises the errors the MPS backend raises for
/// problems too large for one native call, and remembers the shapes they happened on (thread-safe).
/// </summary>
internal sealed class NativeFailureCache
{
    /// <summary>Bounds the memory of the cache; a model only ever has a handful of attention shapes.</summary>
    private const int Capacity = 4096;

    private readonly ConcurrentDictionary<string, byte> _failed = new(StringComparer.Ordinal);

    public static NativeFailureCache Shared { get; } = new();

    /// <summary>
    /// Substrings of the errors MPS raises when one call is too large, one per limit in docs/mps-limits.md
    /// (sources there): the MPSNDArray assertions on bytes (pytorch/pytorch#149261), element count
    /// (pytorch/pytorch#84039) and dimension length (pytorch/pytorch#158824), the matmul output limit
    /// (pytorch/pytorch#141909), Metal's buffer limit (invoke-ai/InvokeAI#3168) and MPSGraph's shape-specialised
    /// placeholders (invoke-ai/InvokeAI#7887). Each is specific to MPS: a bare "NDArray" would also match
    /// unrelated errors, so it is not a marker.
    /// </summary>
    public static readonly string[] Markers =
    {
        "total bytes of NDArray > 2**32",
        "product of dimension sizes > 2**31",
        "NDArray dimension length > INT_MAX",
        "Output size of the matrix multiplication is larger than currently supported",
        "Invalid buffer size",
        "Placeholder shape mismatch",
    };

    public int Count => _failed.Count;

    /// <summary>True when <paramref name="exception"/> (or an inner one) is one of the MPS size errors.</summary>
    public static bool IsSizeFailure(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            foreach (var marker in Markers)
            {
                if (e.Message.IndexOf(marker, StringComparison.Ordinal) >= 0)
                {
                    return true;
                }
            }
        }

        return false;
    }

    public bool HasFailed(AttentionProblem problem) => _failed.ContainsKey(KeyOf(problem));

    public void RecordFailure(AttentionProblem problem)
    {
        if (_failed.Count >= Capacity)
        {
            _failed.Clear();
        }

        _failed.TryAdd(KeyOf(problem), 0);
    }

    /// <summary>Shape, dtype and device of everything the native call sees.</summary>
    private static string KeyOf(AttentionProblem problem)
    {
        var key = new StringBuilder();
        key.Append(problem.Query.device).Append('|').Append(problem.DType)
            .Append("|q").Append(Shapes.Format(problem.Query.shape))
            .Append("|k").Append(Shapes.Format(problem.Key.shape))
            .Append("|v").Append(Shapes.Format(problem.Value.shape));
        if (problem.Mask is { } mask)
        {
            key.Append("|m").Append(mask.dtype).Append(Shapes.Format(mask.shape));
        }

        key.Append(problem.IsCausal ? "|causal" : string.Empty);
        return key.ToString();
    }
}
