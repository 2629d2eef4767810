namespace ChunkedAttention.Kernels;

/// <summary>One unit of kernel work: a native call on a query chunk, or one key block of the online softmax.</summary>
/// <param name="QueryStart">First query row.</param>
/// <param name="QueryRows">Query rows.</param>
/// <param name="KeyStart">First key.</param>
/// <param name="KeyRows">Keys.</param>
/// <param name="ScoreElements">batch*heads*rows*keys of this step's q·kᵀ scores.</param>
internal readonly record struct AttentionStep(long QueryStart, long QueryRows, long KeyStart, long KeyRows, long ScoreElements);
