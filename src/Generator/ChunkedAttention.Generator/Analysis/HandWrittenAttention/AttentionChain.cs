using System;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>How the chain masks the scores, i.e. what <c>attn_mask</c> the single SDPA call gets.</summary>
internal enum AttentionMaskKind
{
    /// <summary>No mask.</summary>
    None,

    /// <summary>A float tensor added to the scores: passed as is.</summary>
    Additive,

    /// <summary><c>masked_fill(cond, -inf)</c>: passed as the boolean complement of <c>cond</c> (true = may attend).</summary>
    Boolean,

    /// <summary>
    /// <c>masked_fill(cond, f)</c> with a finite, very negative <c>f</c>: passed as an additive float mask
    /// that is <c>f</c> where <c>cond</c> holds and 0 elsewhere, in the query's dtype.
    /// </summary>
    FiniteFill,
}

/// <summary>The chain's mask step.</summary>
/// <param name="Kind">How it maps onto <c>attn_mask</c>.</param>
/// <param name="Operand">The added tensor (<see cref="AttentionMaskKind.Additive"/>) or the fill condition.</param>
/// <param name="Fill">The fill value (<see cref="AttentionMaskKind.FiniteFill"/>).</param>
/// <param name="NullChecked">The value tested against null around the step (<c>if (mask is not null)</c>), else null.</param>
internal sealed record AttentionMask(AttentionMaskKind Kind, IOperation Operand, IOperation? Fill, IOperation? NullChecked);

/// <summary>How the chain drops out weights, i.e. what <c>p</c> the single SDPA call gets.</summary>
internal enum AttentionDropoutKind
{
    /// <summary>A TorchSharp <c>Dropout</c> module: <c>p: drop.training ? drop.p : 0.0</c>.</summary>
    Module,

    /// <summary><c>functional.dropout(x, p, training)</c>: <c>p: training ? p : 0.0</c>.</summary>
    Functional,
}

/// <summary>The chain's dropout step.</summary>
/// <param name="Kind">Module or functional.</param>
/// <param name="Module">The module (<see cref="AttentionDropoutKind.Module"/>).</param>
/// <param name="Probability">The probability argument, null for the default 0.5 (<see cref="AttentionDropoutKind.Functional"/>).</param>
/// <param name="Training">The training argument, null when it is absent or constant true (<see cref="AttentionDropoutKind.Functional"/>).</param>
internal sealed record AttentionDropout(AttentionDropoutKind Kind, IOperation? Module, IOperation? Probability, IOperation? Training);

/// <summary>One factor of the scale: the scores (or the query) multiplied, or divided, by <paramref name="Value"/>.</summary>
internal readonly record struct ScaleFactor(IOperation Value, bool Divides);

/// <summary>
/// A recognised hand-written attention chain, ready to become one SDPA call: the values the call
/// reads (they are evaluated where the final product was), the mask, dropout and scale arguments,
/// and what the fix removes.
/// </summary>
internal sealed class AttentionChain
{
    private readonly Lazy<ImmutableArray<IOperation>> _removedStatements;

    public AttentionChain(
        IInvocationOperation final,
        IOperation query,
        IOperation key,
        IOperation value,
        AttentionMask? mask,
        AttentionDropout? dropout,
        ImmutableArray<ScaleFactor> scale,
        bool scaleIsDefault,
        IOperation? finalStatement,
        Lazy<ImmutableArray<IOperation>> removedStatements,
        ILocalSymbol? outputDeclaresLocal,
        ImmutableArray<string> steps)
    {
        Final = final;
        Query = query;
        Key = key;
        Value = value;
        Mask = mask;
        Dropout = dropout;
        Scale = scale;
        ScaleIsDefault = scaleIsDefault;
        FinalStatement = finalStatement;
        _removedStatements = removedStatements;
        OutputDeclaresLocal = outputDeclaresLocal;
        Steps = steps;
    }

    /// <summary>The final <c>matmul</c>/<c>bmm</c> with the value: the fix replaces this expression with the call.</summary>
    public IInvocationOperation Final { get; }

    /// <summary>The query, before any pre-scaling.</summary>
    public IOperation Query { get; }

    /// <summary>The key, before its transposition.</summary>
    public IOperation Key { get; }

    /// <summary>The value.</summary>
    public IOperation Value { get; }

    /// <summary>The mask, or null.</summary>
    public AttentionMask? Mask { get; }

    /// <summary>The dropout, or null.</summary>
    public AttentionDropout? Dropout { get; }

    /// <summary>The factors of the scale in order (empty: none, which SDPA would not match unless the scale is default).</summary>
    public ImmutableArray<ScaleFactor> Scale { get; }

    /// <summary>True when the factors provably equal 1/sqrt(E), SDPA's default: no <c>scale:</c> argument.</summary>
    public bool ScaleIsDefault { get; }

    /// <summary>The statement holding <see cref="Final"/>; null for an expression body.</summary>
    public IOperation? FinalStatement { get; }

    /// <summary>
    /// Statements that only fed the chain, in source order: the steps held in locals, and declarations
    /// of locals (such as a default scale) that nothing else reads once the chain is gone.
    /// </summary>
    public ImmutableArray<IOperation> RemovedStatements => _removedStatements.Value;

    /// <summary>
    /// Set when the final statement assigns the result to a local whose declaration is removed
    /// (<c>att = att.matmul(v)</c>): the fix turns the assignment into that local's declaration.
    /// </summary>
    public ILocalSymbol? OutputDeclaresLocal { get; }

    /// <summary>The recognised steps, for messages and reports (<c>scale</c>, <c>mask:additive</c>, <c>softmax:fp32</c>...).</summary>
    public ImmutableArray<string> Steps { get; }

    /// <summary>A stable one-line summary, passed to the fixer in the diagnostic's properties.</summary>
    public string Summary => string.Join(" ", Steps);
}

/// <summary>What the recogniser made of one candidate final product.</summary>
internal sealed class ChainAnalysis
{
    private ChainAnalysis(AttentionChain? chain, DeclineReason? reason, string? detail, bool isAttention)
    {
        Chain = chain;
        Reason = reason;
        Detail = detail;
        IsAttention = isAttention;
    }

    /// <summary>Not attention at all (no softmax feeding the product): nothing to count.</summary>
    public static ChainAnalysis NotAttention { get; } = new(null, null, null, isAttention: false);

    /// <summary>True when the product is attention-shaped (a softmax's weights times a value).</summary>
    public bool IsAttention { get; }

    /// <summary>The chain when it can become one SDPA call.</summary>
    public AttentionChain? Chain { get; }

    /// <summary>Why attention-shaped code was declined.</summary>
    public DeclineReason? Reason { get; }

    /// <summary>A short free-text detail for the reason (e.g. the offending dim).</summary>
    public string? Detail { get; }

    public static ChainAnalysis Accepted(AttentionChain chain) => new(chain, null, null, isAttention: true);

    public static ChainAnalysis Declined(DeclineReason reason, string? detail = null) => new(null, reason, detail, isAttention: true);
}
