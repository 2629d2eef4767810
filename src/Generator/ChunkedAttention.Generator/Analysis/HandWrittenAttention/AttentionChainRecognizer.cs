using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// Recognises hand-written attention ending at a <c>matmul</c>/<c>bmm</c> of softmax weights with a
/// value: <c>q·kᵀ</c>, optional scale, optional mask, softmax over the last dim, optional dropout,
/// <c>·v</c>. The one recogniser behind SDPA007/SDPA008 and their fix: it works on operations (so
/// only TorchSharp's own methods count), follows values through locals assigned in straight-line
/// code, and accepts a chain only when one SDPA call gives the same results and the rewrite is safe
/// (no intermediate used elsewhere, no moved value changed on the way, no reordered side effects).
/// </summary>
internal sealed partial class AttentionChainRecognizer
{
    private readonly AttentionSymbols _symbols;
    private readonly WrapperArguments? _wrapper;
    private readonly TensorShapes _shapes;

    public AttentionChainRecognizer(AttentionSymbols symbols, WrapperArguments? wrapper)
    {
        _symbols = symbols;
        _wrapper = wrapper;
        _shapes = new TensorShapes(symbols, IsInPlaceStep);
    }

    /// <summary>For a compilation: null when it does not reference TorchSharp.</summary>
    public static AttentionChainRecognizer? For(Compilation compilation, CancellationToken cancellationToken)
    {
        var symbols = AttentionSymbols.TryCreate(compilation);
        if (symbols is null)
        {
            return null;
        }

        return new AttentionChainRecognizer(symbols, WrapperArguments.For(compilation, cancellationToken));
    }

    /// <summary>
    /// Cheap first test: is <paramref name="invocation"/> a TorchSharp <c>matmul</c>/<c>bmm</c> (a possible final
    /// product) with a <c>softmax</c> written before it in its member? Most products are not attention (the
    /// scores product q·kᵀ itself, MLPs, rotary embeddings): they are turned away here, before any value is followed.
    /// </summary>
    public bool IsCandidate(IInvocationOperation invocation) => IsProduct(invocation, out _, out _) && SoftmaxWrittenBefore(invocation);

    /// <summary>Analyzes the chain ending at <paramref name="final"/>.</summary>
    public ChainAnalysis Analyze(IInvocationOperation final, CancellationToken cancellationToken)
    {
        if (!IsProduct(final, out var weights, out var value))
        {
            return ChainAnalysis.NotAttention;
        }

        try
        {
            return new Run(this, final, cancellationToken).Execute(weights, value);
        }
        catch (DeclinedException declined)
        {
            return ChainAnalysis.Declined(declined.Reason, declined.Detail);
        }
    }

    /// <summary>
    /// Whether <c>softmax</c> is written in the member holding <paramref name="product"/> before the product ends.
    /// The weights reach the product through its own operands or through straight-line definitions, which come
    /// before the statement that reads them, and TorchSharp's softmax is only ever called by that name; so a
    /// product with no such text before its end cannot be attention. A text search (a comment may match: then
    /// the full analysis decides) costs far less than realizing the member's tokens or following any value.
    /// </summary>
    private static bool SoftmaxWrittenBefore(IOperation product)
    {
        var member = OperationFacts.Root(product).Syntax;
        var span = Microsoft.CodeAnalysis.Text.TextSpan.FromBounds(member.SpanStart, product.Syntax.Span.End);
        return member.SyntaxTree.GetText().ToString(span).IndexOf("softmax", StringComparison.Ordinal) >= 0;
    }

    /// <summary>The query, key or value that is a plain reference, to read the dtype from (finite fills).</summary>
    public static IOperation? DtypeSource(IOperation query, IOperation key, IOperation value)
    {
        foreach (var candidate in new[] { query, key, value })
        {
            if (OperationFacts.Referenced(OperationFacts.Strip(candidate)) is not null)
            {
                return candidate;
            }
        }

        return null;
    }

    private bool IsProduct(IInvocationOperation invocation, out IOperation left, out IOperation right)
    {
        left = null!;
        right = null!;
        var method = invocation.TargetMethod;
        if (method.Name is not ("matmul" or "bmm"))
        {
            return false;
        }

        if (_symbols.IsTensorMethod(method, method.Name) && invocation.Instance is { } instance && invocation.Arguments.Length == 1)
        {
            left = instance;
            right = invocation.Arguments[0].Value;
            return true;
        }

        if (_symbols.IsTorchFunction(method, method.Name) && invocation.Arguments.Length == 2)
        {
            left = invocation.Arguments[0].Value;
            right = invocation.Arguments[1].Value;
            return true;
        }

        return false;
    }

    private bool IsInPlaceStep(IMethodSymbol method) =>
        method.Name is "mul_" or "div_" or "add_" or "masked_fill_" && _symbols.IsTensorMethod(method, method.Name);

    private bool IsTensor(IOperation operation) => _symbols.IsTensor(operation.Type);

    private static bool IsNumber(ITypeSymbol? type) => type?.SpecialType is SpecialType.System_Double or SpecialType.System_Single
        or SpecialType.System_Int32 or SpecialType.System_Int64 or SpecialType.System_Int16 or SpecialType.System_Byte
        or SpecialType.System_SByte or SpecialType.System_UInt16 or SpecialType.System_UInt32;

    private sealed class DeclinedException : Exception
    {
        public DeclinedException(DeclineReason reason, string? detail)
            : base(reason.ToString())
        {
            Reason = reason;
            Detail = detail;
        }

        public DeclineReason Reason { get; }

        public string? Detail { get; }
    }

    private enum PreKind
    {
        ScaleMultiply,
        ScaleDivide,
        Additive,
        Fill,
        Identity,
    }

    /// <summary>One step between the product and the softmax (forward order once reversed).</summary>
    private sealed record PreStep(PreKind Kind, IOperation Operand, IOperation? Fill, IOperation? NullChecked);

    /// <summary>A value reached by following locals: an expression, or a compound/in-place definition.</summary>
    private readonly struct Cursor
    {
        public Cursor(IOperation? expression, Definition? step)
        {
            Expression = expression;
            Step = step;
        }

        public IOperation? Expression { get; }

        public Definition? Step { get; }
    }

    /// <summary>The state of one analysis.</summary>
    private sealed partial class Run
    {
        private readonly AttentionChainRecognizer _owner;
        private readonly AttentionSymbols _symbols;
        private readonly IInvocationOperation _final;
        private readonly CancellationToken _cancellationToken;
        private readonly IOperation _root;
        private readonly IOperation? _finalAnchor;
        private readonly HashSet<IOperation> _consumedStatements = new();
        private readonly HashSet<IOperation> _consumedReferences = new();
        private readonly Dictionary<ISymbol, List<Definition>> _intermediates = new(SymbolEqualityComparer.Default);
        private bool _upcast;
        private bool _castBack;
        private bool _prescaled;

        public Run(AttentionChainRecognizer owner, IInvocationOperation final, CancellationToken cancellationToken)
        {
            _owner = owner;
            _symbols = owner._symbols;
            _final = final;
            _cancellationToken = cancellationToken;
            _root = OperationFacts.Root(final);
            _finalAnchor = OperationFacts.Anchor(final);
        }

        private static DeclinedException Decline(DeclineReason reason, string? detail = null) => new(reason, detail);

        public ChainAnalysis Execute(IOperation weights, IOperation value)
        {
            // Most products are not attention: say so before anything is followed (and declined).
            if (!ReachesSoftmax(weights, 0))
            {
                return ChainAnalysis.NotAttention;
            }

            // 1. After the softmax: dropout and casts, back to the softmax.
            AttentionDropout? dropout = null;
            var dropoutSeen = false;
            IInvocationOperation? softmax = null;
            IOperation? softmaxInput = null;
            IOperation? softmaxDim = null;
            var cursor = Follow(weights);
            while (softmax is null)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                if (cursor.Step is { } step)
                {
                    return ReachesSoftmax(step.Target, 0) ? throw Decline(DeclineReason.StepAfterSoftmax) : ChainAnalysis.NotAttention;
                }

                var expression = cursor.Expression!;
                if (expression is IInvocationOperation invocation)
                {
                    if (IsSoftmax(invocation, out var input, out var dim, out var dtype))
                    {
                        softmax = invocation;
                        softmaxInput = input;
                        softmaxDim = dim;
                        if (dtype is not null)
                        {
                            if (!IsUpcastDtype(dtype))
                            {
                                throw Decline(DeclineReason.CastNotUpcast, "softmax dtype");
                            }

                            _upcast = true;
                        }

                        break;
                    }

                    if (IsDropoutModule(invocation, out var module, out input))
                    {
                        if (dropoutSeen)
                        {
                            throw Decline(DeclineReason.DropoutNotMappable, "two dropouts");
                        }

                        dropoutSeen = true;
                        dropout = new AttentionDropout(AttentionDropoutKind.Module, module, null, null);
                        cursor = Follow(input);
                        continue;
                    }

                    if (IsFunctionalDropout(invocation, out input, out var probability, out var training, out var noOp))
                    {
                        if (dropoutSeen)
                        {
                            throw Decline(DeclineReason.DropoutNotMappable, "two dropouts");
                        }

                        dropoutSeen = true;
                        dropout = noOp ? null : new AttentionDropout(AttentionDropoutKind.Functional, null, probability, training);
                        cursor = Follow(input);
                        continue;
                    }

                    if (IsDtypeCast(invocation, out input, out _))
                    {
                        _castBack = true;
                        cursor = Follow(input);
                        continue;
                    }

                    if (invocation.TargetMethod.Name is "forward" or "call" && _symbols.IsModule(invocation.Instance?.Type)
                        && invocation.Arguments.Length == 1 && ReachesSoftmax(invocation.Arguments[0].Value, 0))
                    {
                        throw Decline(DeclineReason.DropoutNotMappable, "module is not TorchSharp's Dropout");
                    }
                }

                if (TensorInputOfStep(expression) is { } stepInput && ReachesSoftmax(stepInput, 0))
                {
                    throw Decline(DeclineReason.StepAfterSoftmax);
                }

                return ChainAnalysis.NotAttention;
            }

            // 2. Into the softmax: an optional upcast.
            cursor = Follow(softmaxInput!);
            if (cursor.Expression is IInvocationOperation cast && IsDtypeCast(cast, out var uncast, out var target))
            {
                if (target is null || !IsUpcastDtype(target))
                {
                    throw Decline(DeclineReason.CastNotUpcast);
                }

                _upcast = true;
                cursor = Follow(uncast);
            }

            // 3. Before the softmax: scale and mask steps, back to the product of query and key.
            var backward = new List<PreStep>();
            IInvocationOperation? scores = null;
            while (scores is null)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                if (cursor.Step is { } definition)
                {
                    backward.Add(FromDefinition(definition));
                    cursor = FollowPrevious(definition);
                    continue;
                }

                var expression = cursor.Expression!;
                if (expression is IInvocationOperation product && IsScoresProduct(product))
                {
                    scores = product;
                    break;
                }

                if (FromExpression(expression, out var preStep, out var input))
                {
                    backward.Add(preStep);
                    cursor = Follow(input);
                    continue;
                }

                throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed);
            }

            // 4. The product: query (with any pre-scale) times the key transposed on its last two dims.
            var forward = new List<PreStep>();
            var (query, key, scoresRank, productSteps) = ParseScores(scores, forward);
            backward.Reverse();
            forward.AddRange(backward);

            var dimension = softmaxDim is null ? -1 : OperationFacts.Integer(softmaxDim);
            if (dimension is null)
            {
                throw Decline(DeclineReason.SoftmaxNotOverLastDim, "dim not constant");
            }

            if (dimension.Value != -1)
            {
                if (dimension.Value < 0)
                {
                    throw Decline(DeclineReason.SoftmaxNotOverLastDim, $"dim {dimension.Value}");
                }

                if (scoresRank is null)
                {
                    throw Decline(DeclineReason.RankUnknown, $"softmax dim {dimension.Value}");
                }

                if (dimension.Value != scoresRank.Value - 1)
                {
                    throw Decline(DeclineReason.SoftmaxNotOverLastDim, $"dim {dimension.Value} of {scoresRank.Value}");
                }
            }

            var (mask, factors) = MaskAndScale(forward);
            var scaleIsDefault = IsDefaultScale(factors, query, key);

            var steps = new List<string> { productSteps };
            if (_prescaled)
            {
                steps.Add("prescale");
            }

            if (factors.Count > 0)
            {
                steps.Add(scaleIsDefault ? "scale:default" : "scale");
            }

            if (mask is not null)
            {
                var kind = mask.Kind switch
                {
                    AttentionMaskKind.Additive => "mask:additive",
                    AttentionMaskKind.Boolean => "mask:boolean",
                    _ => "mask:finitefill",
                };
                steps.Add(mask.NullChecked is null ? kind : kind + "?");
            }

            steps.Add(_upcast ? "softmax:upcast" : "softmax");
            if (_castBack)
            {
                steps.Add("cast");
            }

            if (dropout is not null)
            {
                steps.Add(dropout.Kind == AttentionDropoutKind.Module ? "dropout:module" : "dropout:functional");
            }

            CheckWrapper(mask, dropout, needsScale: !scaleIsDefault);
            var outputLocal = CheckIntermediates();
            var kept = KeptValues(query, key, value, mask, dropout, scaleIsDefault ? new List<ScaleFactor>() : factors);
            CheckMovedValues(kept);
            CheckDirectives();
            // Only the fixer needs what else goes with the chain; the analyzer never asks.
            var removed = new Lazy<ImmutableArray<IOperation>>(() => RemovedStatements(kept));

            return ChainAnalysis.Accepted(new AttentionChain(
                _final,
                query,
                key,
                value,
                mask,
                dropout,
                factors.ToImmutableArray(),
                scaleIsDefault,
                _finalAnchor,
                removed,
                outputLocal,
                steps.ToImmutableArray()));
        }

        // ---- Following values through locals ----

        private Cursor Follow(IOperation value)
        {
            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Variable(stripped) is { } variable && _owner.IsTensor(stripped) && OperationFacts.Anchor(stripped) is { } anchor)
            {
                return FollowFrom(variable, stripped, anchor);
            }

            return new Cursor(stripped, null);
        }

        private Cursor FollowPrevious(Definition definition)
        {
            var target = definition.Target!;
            return FollowFrom(OperationFacts.Variable(target)!, OperationFacts.Strip(target), definition.Statement);
        }

        private Cursor FollowFrom(ISymbol variable, IOperation read, IOperation anchor)
        {
            var reaching = StraightLineDefinitions.Find(variable, anchor, _owner.IsInPlaceStep);
            if (reaching.IsBroken)
            {
                throw Decline(DeclineReason.NotStraightLine, variable.Name);
            }

            if (reaching.Definition is not { } definition)
            {
                return new Cursor(read, null);
            }

            Consume(variable, definition, read);
            return definition.Kind == DefinitionKind.Value && definition.NullChecked is null ? Follow(definition.Operation) : new Cursor(null, definition);
        }

        private void Consume(ISymbol variable, Definition definition, IOperation read)
        {
            if (definition.IsDeclaration && !definition.IsSoleDeclarator)
            {
                throw Decline(DeclineReason.NotStraightLine, $"{variable.Name} declared with other locals");
            }

            _consumedStatements.Add(definition.Statement);
            _consumedReferences.Add(read);
            if (definition.Target is { } target)
            {
                _consumedReferences.Add(OperationFacts.Strip(target));
            }

            if (!_intermediates.TryGetValue(variable, out var list))
            {
                list = new List<Definition>();
                _intermediates.Add(variable, list);
            }

            list.Add(definition);
        }

        // Looks back (without consuming) for a softmax feeding this value: tells a step after the
        // softmax (declined) from a product that is not attention at all (not counted).
        private bool ReachesSoftmax(IOperation? value, int depth)
        {
            if (value is null || depth > 16)
            {
                return false;
            }

            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Variable(stripped) is { } variable && OperationFacts.Anchor(stripped) is { } anchor)
            {
                var definition = StraightLineDefinitions.Find(variable, anchor, _owner.IsInPlaceStep).Definition;
                return definition is not null && (definition.Kind == DefinitionKind.Value
                    ? ReachesSoftmax(definition.Operation, depth + 1)
                    : ReachesSoftmax(definition.Target, depth + 1));
            }

            if (stripped is IInvocationOperation invocation)
            {
                if (IsSoftmax(invocation, out _, out _, out _))
                {
                    return true;
                }

                if (IsDropoutModule(invocation, out _, out var input) || IsFunctionalDropout(invocation, out input, out _, out _, out _)
                    || IsDtypeCast(invocation, out input, out _))
                {
                    return ReachesSoftmax(input, depth + 1);
                }
            }

            return TensorInputOfStep(stripped) is { } tensorInput && ReachesSoftmax(tensorInput, depth + 1);
        }

        // Looks back (without consuming) for a matmul/bmm: which operand of 'a + b' carries the scores.
        private bool ReachesProduct(IOperation value, int depth)
        {
            if (depth > 16)
            {
                return false;
            }

            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Variable(stripped) is { } variable && OperationFacts.Anchor(stripped) is { } anchor)
            {
                var definition = StraightLineDefinitions.Find(variable, anchor, _owner.IsInPlaceStep).Definition;
                return definition is not null && (definition.Kind == DefinitionKind.Value
                    ? ReachesProduct(definition.Operation, depth + 1)
                    : ReachesProduct(definition.Target!, depth + 1));
            }

            if (stripped is IInvocationOperation invocation && IsScoresProduct(invocation))
            {
                return true;
            }

            return TensorInputOfStep(stripped) is { } input && ReachesProduct(input, depth + 1);
        }

        // The tensor an arithmetic step or mask applies to (the scores side), for the look-backs above.
        private IOperation? TensorInputOfStep(IOperation operation)
        {
            switch (operation)
            {
                case IBinaryOperation binary when _symbols.IsTensorOperator(binary.OperatorMethod, binary.OperatorMethod?.Name ?? string.Empty):
                    if (binary.OperatorMethod!.Name == "op_Addition" && _owner.IsTensor(binary.LeftOperand) && _owner.IsTensor(binary.RightOperand))
                    {
                        return ReachesProduct(binary.RightOperand, 0) && !ReachesProduct(binary.LeftOperand, 0) ? binary.RightOperand : binary.LeftOperand;
                    }

                    return _owner.IsTensor(binary.LeftOperand) ? binary.LeftOperand : _owner.IsTensor(binary.RightOperand) ? binary.RightOperand : null;
                case IInvocationOperation invocation when invocation.Instance is { } instance && _owner.IsTensor(instance)
                    && invocation.TargetMethod.Name is "mul" or "div" or "add" or "sub" or "masked_fill" or "mul_" or "div_" or "add_" or "masked_fill_" or "contiguous"
                    && _symbols.IsFromTorchSharp(invocation.TargetMethod):
                    return instance;
                default:
                    return null;
            }
        }
    }
}

