namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// Why attention-shaped code (a softmax multiplied by a value) is left alone: no diagnostic and no
/// fix. Each reason is a case where one SDPA call would not give the same results, or where the
/// rewrite could not be shown to be safe.
/// </summary>
internal enum DeclineReason
{
    /// <summary>The scores or the weights are used for something else (returned, logged, stored, captured).</summary>
    IntermediateUsedElsewhere,

    /// <summary>The softmax is not over the last dim (or its dim cannot be shown to be the last one).</summary>
    SoftmaxNotOverLastDim,

    /// <summary>What goes into the softmax is not the query times the key transposed on its last two dims.</summary>
    ScoresNotQueryTimesKeyTransposed,

    /// <summary><c>transpose(2, 3)</c>, <c>transpose(1, 2)</c> or a positive softmax dim on a tensor whose rank cannot be proven.</summary>
    RankUnknown,

    /// <summary>An arithmetic step, or a mask, applied to the weights after the softmax.</summary>
    StepAfterSoftmax,

    /// <summary>A float mask added before a scale, or a finite fill before it (the mask would be scaled too).</summary>
    MaskBeforeScale,

    /// <summary>More than one mask (SDPA takes one).</summary>
    SeveralMasks,

    /// <summary>A <c>masked_fill</c> value that does not make the weight zero (not -inf, not at most -1e4).</summary>
    FillValueNotNegligible,

    /// <summary>The scores are multiplied or divided by something that is not a number (a tensor, a <c>Scalar</c>).</summary>
    ScaleNotANumber,

    /// <summary>A mask step that is not a tensor added to the scores or a <c>masked_fill</c> (e.g. a scalar added).</summary>
    MaskNotMappable,

    /// <summary>A dropout that is neither a TorchSharp <c>Dropout</c> module nor <c>functional.dropout</c>, or a second one.</summary>
    DropoutNotMappable,

    /// <summary>A cast before the softmax that is not an upcast to Float32/Float64.</summary>
    CastNotUpcast,

    /// <summary>A local of the chain is reassigned in a loop, a branch or by reference, so its value is not one straight line.</summary>
    NotStraightLine,

    /// <summary>A value the call would read later (query, key, mask, scale...) is reassigned between its use and the final product.</summary>
    MovedValueChanges,

    /// <summary>Moving a value to the final product would reorder calls with side effects (module calls, in-place ops, logging).</summary>
    SideEffects,

    /// <summary>A preprocessor directive sits among the statements the fix would remove.</summary>
    PreprocessorDirective,

    /// <summary>The referenced TorchSharp's SDPA lacks a parameter the call would need (mask, dropout, scale).</summary>
    WrapperLacksParameter,
}

/// <summary>Texts for <see cref="DeclineReason"/> (the corpus report prints them).</summary>
internal static class DeclineReasons
{
    public static string Describe(DeclineReason reason) => reason switch
    {
        DeclineReason.IntermediateUsedElsewhere => "scores or weights used elsewhere",
        DeclineReason.SoftmaxNotOverLastDim => "softmax not over the last dim",
        DeclineReason.ScoresNotQueryTimesKeyTransposed => "scores are not q times k transposed",
        DeclineReason.RankUnknown => "rank not provable for a positive dim",
        DeclineReason.StepAfterSoftmax => "step applied after the softmax",
        DeclineReason.MaskBeforeScale => "mask applied before the scale",
        DeclineReason.SeveralMasks => "more than one mask",
        DeclineReason.FillValueNotNegligible => "masked_fill value does not zero the weight",
        DeclineReason.ScaleNotANumber => "scores scaled by a tensor or Scalar",
        DeclineReason.MaskNotMappable => "mask step not mappable",
        DeclineReason.DropoutNotMappable => "dropout not mappable",
        DeclineReason.CastNotUpcast => "cast before softmax is not an upcast",
        DeclineReason.NotStraightLine => "local reassigned outside straight-line code",
        DeclineReason.MovedValueChanges => "a moved value is reassigned before the product",
        DeclineReason.SideEffects => "moving values would reorder side effects",
        DeclineReason.PreprocessorDirective => "preprocessor directive inside the chain",
        DeclineReason.WrapperLacksParameter => "TorchSharp SDPA lacks a needed parameter",
        _ => reason.ToString(),
    };
}
