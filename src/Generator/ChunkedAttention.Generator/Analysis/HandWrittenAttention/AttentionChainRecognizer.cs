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
internal sealed class AttentionChainRecognizer
{
    private readonly AttentionSymbols _symbols;
    private readonly WrapperArguments? _wrapper;
    private readonly bool _hasRuntime;
    private readonly TensorShapes _shapes;

    public AttentionChainRecognizer(AttentionSymbols symbols, WrapperArguments? wrapper, bool hasRuntime)
    {
        _symbols = symbols;
        _wrapper = wrapper;
        _hasRuntime = hasRuntime;
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

        return new AttentionChainRecognizer(
            symbols,
            WrapperArguments.For(compilation, cancellationToken),
            compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionAttribute) is not null);
    }

    /// <summary>Cheap first test: is <paramref name="invocation"/> a TorchSharp <c>matmul</c>/<c>bmm</c> (a possible final product)?</summary>
    public bool IsCandidate(IInvocationOperation invocation) => IsProduct(invocation, out _, out _);

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
    private sealed class Run
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
            CheckHost();
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

        // ---- Recognising single operations ----

        private bool IsSoftmax(IInvocationOperation invocation, out IOperation input, out IOperation? dim, out IOperation? dtype)
        {
            input = null!;
            dim = null;
            dtype = null;
            var method = invocation.TargetMethod;
            if (method.Name != "softmax")
            {
                return false;
            }

            if (_symbols.IsTensorMethod(method, "softmax") && invocation.Instance is { } instance)
            {
                input = instance;
            }
            else if ((_symbols.IsFunctional(method, "softmax") || _symbols.IsTorchFunction(method, "softmax") || _symbols.IsSpecial(method, "softmax"))
                && OperationFacts.ArgumentAt(invocation, 0) is { } first)
            {
                input = first.Value;
            }
            else
            {
                return false;
            }

            dim = OperationFacts.Argument(invocation, "dim")?.Value;
            var dtypeArgument = OperationFacts.Argument(invocation, "dtype")?.Value;
            if (dtypeArgument is not null && !(OperationFacts.Strip(dtypeArgument).ConstantValue is { HasValue: true, Value: null }))
            {
                dtype = dtypeArgument;
            }

            return dim is not null;
        }

        private bool IsDropoutModule(IInvocationOperation invocation, out IOperation module, out IOperation input)
        {
            module = null!;
            input = null!;
            if (_symbols.Dropout is null || invocation.TargetMethod.Name is not ("forward" or "call")
                || invocation.Instance is not { } instance || invocation.Arguments.Length != 1
                || !SymbolEqualityComparer.Default.Equals(instance.Type, _symbols.Dropout)
                || !_symbols.IsFromTorchSharp(invocation.TargetMethod))
            {
                return false;
            }

            module = instance;
            input = invocation.Arguments[0].Value;
            return true;
        }

        private bool IsFunctionalDropout(IInvocationOperation invocation, out IOperation input, out IOperation? probability, out IOperation? training, out bool noOp)
        {
            input = null!;
            probability = null;
            training = null;
            noOp = false;
            if (!_symbols.IsFunctional(invocation.TargetMethod, "dropout") || OperationFacts.ArgumentAt(invocation, 0) is not { } first)
            {
                return false;
            }

            input = first.Value;
            probability = OperationFacts.Argument(invocation, "p")?.Value;
            training = OperationFacts.Argument(invocation, "training")?.Value;
            if (training is not null && training.ConstantValue is { HasValue: true, Value: bool constant })
            {
                noOp = !constant;
                training = null;
            }

            if (probability is not null && OperationFacts.Constant(probability) is 0.0)
            {
                noOp = true;
            }

            return true;
        }

        // A dtype conversion: to(ScalarType), to(Tensor), type_as, to_type, float(), double(), half(), bfloat16().
        private bool IsDtypeCast(IInvocationOperation invocation, out IOperation input, out IOperation? target)
        {
            input = null!;
            target = null;
            var method = invocation.TargetMethod;
            if (invocation.Instance is not { } instance || !_owner.IsTensor(instance) || !_symbols.IsFromTorchSharp(method))
            {
                return false;
            }

            switch (method.Name)
            {
                case "to" or "to_type" when method.Parameters.Length > 0 && _symbols.ScalarType is not null
                    && SymbolEqualityComparer.Default.Equals(method.Parameters[0].Type, _symbols.ScalarType)
                    && method.Parameters.Skip(1).All(p => p.Name != "device"):
                    target = OperationFacts.ArgumentAt(invocation, 0)?.Value;
                    break;
                case "to" when method.Parameters.Length > 0 && _symbols.IsTensor(method.Parameters[0].Type):
                case "type_as":
                    break;
                case "float" or "double" or "half" or "bfloat16" when method.Parameters.Length == 0:
                    target = invocation;
                    break;
                default:
                    return false;
            }

            input = instance;
            return true;
        }

        // Float32/Float64 as a ScalarType constant, torch.float32/float64/@float/@double, or x.float()/x.double().
        private bool IsUpcastDtype(IOperation dtype)
        {
            var stripped = OperationFacts.Strip(dtype);
            if (stripped is IInvocationOperation { TargetMethod.Name: "float" or "double" })
            {
                return true;
            }

            if (stripped.ConstantValue is { HasValue: true } constant && _symbols.ScalarType is not null
                && SymbolEqualityComparer.Default.Equals(stripped.Type, _symbols.ScalarType))
            {
                var name = _symbols.ScalarType.GetMembers().OfType<IFieldSymbol>()
                    .FirstOrDefault(f => f.HasConstantValue && Equals(f.ConstantValue, constant.Value))?.Name;
                return name is "Float32" or "Float64";
            }

            return stripped is IFieldReferenceOperation field
                && SymbolEqualityComparer.Default.Equals(field.Field.ContainingType, _symbols.Torch)
                && field.Field.Name is "float32" or "float64" or "float" or "double";
        }

        private bool IsScoresProduct(IInvocationOperation invocation)
        {
            var method = invocation.TargetMethod;
            return method.Name switch
            {
                "matmul" or "bmm" => (_symbols.IsTensorMethod(method, method.Name) && invocation.Instance is not null && invocation.Arguments.Length == 1)
                    || (_symbols.IsTorchFunction(method, method.Name) && invocation.Arguments.Length == 2),
                _ => false,
            };
        }

        // ---- Steps between the product and the softmax ----

        private bool FromExpression(IOperation expression, out PreStep step, out IOperation input, ISymbol? self = null)
        {
            step = null!;
            input = null!;
            switch (expression)
            {
                case IBinaryOperation binary when binary.OperatorMethod is { } method && _symbols.IsTensorOperator(method, method.Name):
                    var leftIsTensor = _owner.IsTensor(binary.LeftOperand);
                    var rightIsTensor = _owner.IsTensor(binary.RightOperand);
                    switch (method.Name)
                    {
                        case "op_Multiply":
                            if (leftIsTensor && rightIsTensor)
                            {
                                throw Decline(DeclineReason.ScaleNotANumber, "scores times a tensor");
                            }

                            input = leftIsTensor ? binary.LeftOperand : binary.RightOperand;
                            step = Scale(leftIsTensor ? binary.RightOperand : binary.LeftOperand, divides: false);
                            return true;
                        case "op_Division":
                            if (!leftIsTensor)
                            {
                                throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed, "number divided by the scores");
                            }

                            if (rightIsTensor)
                            {
                                throw Decline(DeclineReason.ScaleNotANumber, "scores divided by a tensor");
                            }

                            input = binary.LeftOperand;
                            step = Scale(binary.RightOperand, divides: true);
                            return true;
                        case "op_Addition":
                            if (!(leftIsTensor && rightIsTensor))
                            {
                                throw Decline(DeclineReason.MaskNotMappable, "a number added to the scores");
                            }

                            var scoresOnRight = self is not null
                                ? OperationFacts.IsReferenceTo(binary.RightOperand, self) && !OperationFacts.IsReferenceTo(binary.LeftOperand, self)
                                : ReachesProduct(binary.RightOperand, 0) && !ReachesProduct(binary.LeftOperand, 0);
                            input = scoresOnRight ? binary.RightOperand : binary.LeftOperand;
                            step = new PreStep(PreKind.Additive, scoresOnRight ? binary.LeftOperand : binary.RightOperand, null, null);
                            return true;
                        default:
                            throw Decline(DeclineReason.MaskNotMappable, method.Name);
                    }

                case IInvocationOperation invocation when invocation.Instance is { } instance && _owner.IsTensor(instance)
                    && _symbols.IsFromTorchSharp(invocation.TargetMethod):
                    var known = FromTensorMethod(invocation, out step);
                    input = instance;
                    return known;
                default:
                    return false;
            }
        }

        private bool FromTensorMethod(IInvocationOperation invocation, out PreStep step)
        {
            step = null!;
            var method = invocation.TargetMethod;
            var arguments = invocation.Arguments;
            switch (method.Name)
            {
                case "mul" or "mul_" or "div" or "div_":
                    var operand = OperationFacts.ArgumentAt(invocation, 0)!.Value;
                    if (_symbols.IsTensor(method.Parameters[0].Type))
                    {
                        throw Decline(DeclineReason.ScaleNotANumber, "scores times a tensor");
                    }

                    if (OperationFacts.Argument(invocation, "rounding_mode") is not null)
                    {
                        throw Decline(DeclineReason.ScaleNotANumber, "rounding division");
                    }

                    step = Scale(operand, divides: method.Name.StartsWith("div", StringComparison.Ordinal));
                    return true;
                case "add" or "add_":
                    if (arguments.Length != 1 || !_symbols.IsTensor(method.Parameters[0].Type))
                    {
                        throw Decline(DeclineReason.MaskNotMappable, "add with a number or alpha");
                    }

                    step = new PreStep(PreKind.Additive, arguments[0].Value, null, null);
                    return true;
                case "masked_fill" or "masked_fill_":
                    step = Fill(OperationFacts.ArgumentAt(invocation, 0)!.Value, OperationFacts.ArgumentAt(invocation, 1)!.Value);
                    return true;
                case "contiguous":
                    step = new PreStep(PreKind.Identity, invocation, null, null);
                    return true;
                case "to" or "to_type" or "float" or "double" or "half" or "bfloat16" or "type_as":
                    throw Decline(DeclineReason.CastNotUpcast, "cast among the score steps");
                default:
                    return false;
            }
        }

        private PreStep FromDefinition(Definition definition)
        {
            PreStep step;
            switch (definition.Operation)
            {
                case ICompoundAssignmentOperation compound when compound.OperatorMethod is { } method && _symbols.IsTensorOperator(method, method.Name):
                    var operandIsTensor = _owner.IsTensor(compound.Value);
                    step = method.Name switch
                    {
                        "op_Multiply" or "op_Division" when !operandIsTensor => Scale(compound.Value, divides: method.Name == "op_Division"),
                        "op_Multiply" or "op_Division" => throw Decline(DeclineReason.ScaleNotANumber, "scores scaled by a tensor"),
                        "op_Addition" when operandIsTensor => new PreStep(PreKind.Additive, compound.Value, null, null),
                        _ => throw Decline(DeclineReason.MaskNotMappable, method.Name),
                    };
                    break;
                case IInvocationOperation invocation when definition.Kind == DefinitionKind.InPlace && FromTensorMethod(invocation, out var fromMethod):
                    step = fromMethod;
                    break;
                case var value when definition.Kind == DefinitionKind.Value:
                    // 'x = x + mask;' under a null check: the step's input must be the same local's previous value.
                    var self = OperationFacts.Variable(definition.Target!)!;
                    if (!FromExpression(OperationFacts.Strip(value), out step, out var input, self) || !OperationFacts.IsReferenceTo(input, self))
                    {
                        throw Decline(DeclineReason.NotStraightLine, self.Name + " assigned something else under a null check");
                    }

                    _consumedReferences.Add(OperationFacts.Strip(input));
                    break;
                default:
                    throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed);
            }

            if (definition.NullChecked is { } tested)
            {
                if (step.Kind is not (PreKind.Additive or PreKind.Fill))
                {
                    throw Decline(DeclineReason.NotStraightLine, "a scale under a null check");
                }

                step = step with { NullChecked = tested };
            }

            return step;
        }

        private PreStep Scale(IOperation operand, bool divides)
        {
            var type = OperationFacts.Strip(operand).Type;
            if (!IsNumber(type) && !IsNumber(operand.Type))
            {
                throw Decline(DeclineReason.ScaleNotANumber, type?.Name);
            }

            return new PreStep(divides ? PreKind.ScaleDivide : PreKind.ScaleMultiply, operand, null, null);
        }

        private PreStep Fill(IOperation condition, IOperation value)
        {
            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Constant(stripped) is { } constant)
            {
                if (double.IsNegativeInfinity(constant))
                {
                    return new PreStep(PreKind.Fill, condition, null, null);
                }

                if (constant <= -1e4 && !double.IsNaN(constant))
                {
                    return new PreStep(PreKind.Fill, condition, value, null);
                }

                throw Decline(DeclineReason.FillValueNotNegligible, constant.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            }

            // torch.finfo(dtype).min: the most negative finite value of the dtype.
            if (stripped is IFieldReferenceOperation { Field.Name: "min" } field && _symbols.FInfo is not null
                && SymbolEqualityComparer.Default.Equals(field.Field.ContainingType, _symbols.FInfo))
            {
                return new PreStep(PreKind.Fill, condition, value, null);
            }

            throw Decline(DeclineReason.FillValueNotNegligible, "not a constant");
        }

        // ---- The product of query and key ----

        private (IOperation Query, IOperation Key, int? Rank, string Step) ParseScores(IInvocationOperation scores, List<PreStep> forward)
        {
            IOperation queryOperand;
            IOperation keyOperand;
            int? contextRank = null;
            var name = scores.TargetMethod.Name;
            if (scores.Instance is { } instance)
            {
                queryOperand = instance;
                keyOperand = scores.Arguments[0].Value;
                contextRank = name == "bmm" ? 3 : null;
            }
            else
            {
                queryOperand = scores.Arguments[0].Value;
                keyOperand = scores.Arguments[1].Value;
                contextRank = name == "bmm" ? 3 : null;
            }

            var query = WithoutUpcast(PeelQueryScale(queryOperand, forward));
            var key = WithoutUpcast(PeelKeyTranspose(keyOperand, contextRank));
            var rank = contextRank ?? (_owner._shapes.Rank(query) is { } qr && _owner._shapes.Rank(key) is { } kr && qr >= 2 && kr >= 2 ? Math.Max(qr, kr) : null);
            return (query, key, rank, "scores:" + name);
        }

        // q.to(Float32) / k.@float() before the product: an upcast of the scores, dropped like the
        // softmax's (the call gets q, k and v in their own, common dtype).
        private IOperation WithoutUpcast(IOperation operand)
        {
            if (OperationFacts.Strip(operand) is IInvocationOperation cast && IsDtypeCast(cast, out var inner, out var target))
            {
                if (target is null || !IsUpcastDtype(target))
                {
                    throw Decline(DeclineReason.CastNotUpcast, "query or key cast");
                }

                _upcast = true;
                return inner;
            }

            return operand;
        }

        // q * s, s * q, q / s, q.mul(s), q.div(s), inline or through locals (q = q * scale;).
        private IOperation PeelQueryScale(IOperation operand, List<PreStep> forward)
        {
            var factors = new List<PreStep>();
            var current = operand;
            while (true)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                var stripped = OperationFacts.Strip(current);
                if (PrescaleOf(stripped) is { } inline)
                {
                    factors.Add(inline.Step);
                    current = inline.Input;
                    continue;
                }

                if (OperationFacts.Variable(stripped) is { } variable && OperationFacts.Anchor(stripped) is { } anchor)
                {
                    var definition = StraightLineDefinitions.Find(variable, anchor, _owner.IsInPlaceStep).Definition;
                    if (definition is { NullChecked: null })
                    {
                        if (definition.Kind == DefinitionKind.Value && PrescaleOf(OperationFacts.Strip(definition.Operation)) is { } assigned)
                        {
                            Consume(variable, definition, stripped);
                            factors.Add(assigned.Step);
                            MarkMovedRead(assigned.Input);
                            current = assigned.Input;
                            continue;
                        }

                        if (definition.Kind != DefinitionKind.Value && IsScaleDefinition(definition))
                        {
                            Consume(variable, definition, stripped);
                            factors.Add(FromDefinition(definition));
                            current = definition.Target!;
                            MarkMovedRead(current);
                            current = PreviousValue(variable, definition);
                            continue;
                        }
                    }
                }

                break;
            }

            if (factors.Count > 0)
            {
                _prescaled = true;
            }

            factors.Reverse();
            forward.AddRange(factors);
            return current;
        }

        // The read of the unscaled query left behind by a consumed pre-scale: the call reads it later.
        private void MarkMovedRead(IOperation read) => _consumedReferences.Add(OperationFacts.Strip(read));

        private IOperation PreviousValue(ISymbol variable, Definition definition) => OperationFacts.Strip(definition.Target!);

        private bool IsScaleDefinition(Definition definition) =>
            definition.Operation switch
            {
                ICompoundAssignmentOperation { OperatorMethod.Name: "op_Multiply" or "op_Division" } compound => !_owner.IsTensor(compound.Value),
                IInvocationOperation { TargetMethod.Name: "mul_" or "div_" } invocation => !_symbols.IsTensor(invocation.TargetMethod.Parameters[0].Type),
                _ => false,
            };

        private (PreStep Step, IOperation Input)? PrescaleOf(IOperation operation)
        {
            switch (operation)
            {
                case IBinaryOperation { OperatorMethod: { Name: "op_Multiply" or "op_Division" } method } binary when _symbols.IsTensorOperator(method, method.Name):
                    var leftIsTensor = _owner.IsTensor(binary.LeftOperand);
                    var rightIsTensor = _owner.IsTensor(binary.RightOperand);
                    if (leftIsTensor == rightIsTensor || (method.Name == "op_Division" && !leftIsTensor))
                    {
                        return null;
                    }

                    return (Scale(leftIsTensor ? binary.RightOperand : binary.LeftOperand, method.Name == "op_Division"), leftIsTensor ? binary.LeftOperand : binary.RightOperand);
                case IInvocationOperation { TargetMethod.Name: "mul" or "div" } invocation when invocation.Instance is { } instance
                    && _symbols.IsTensorMethod(invocation.TargetMethod, invocation.TargetMethod.Name)
                    && !_symbols.IsTensor(invocation.TargetMethod.Parameters[0].Type)
                    && OperationFacts.Argument(invocation, "rounding_mode") is null:
                    return (Scale(invocation.Arguments[0].Value, invocation.TargetMethod.Name == "div"), instance);
                default:
                    return null;
            }
        }

        private IOperation PeelKeyTranspose(IOperation operand, int? contextRank)
        {
            var stripped = OperationFacts.Strip(operand);
            if (OperationFacts.Variable(stripped) is { } variable && OperationFacts.Anchor(stripped) is { } anchor
                && StraightLineDefinitions.Find(variable, anchor, _owner.IsInPlaceStep).Definition is { Kind: DefinitionKind.Value, NullChecked: null } definition
                && TransposeOf(OperationFacts.Strip(definition.Operation), out _, out _, out _))
            {
                Consume(variable, definition, stripped);
                stripped = OperationFacts.Strip(definition.Operation);
            }

            while (stripped is IInvocationOperation { TargetMethod.Name: "contiguous" } contiguous && contiguous.Instance is { } inner
                && _symbols.IsTensorMethod(contiguous.TargetMethod, "contiguous"))
            {
                stripped = OperationFacts.Strip(inner);
            }

            if (!TransposeOf(stripped, out var key, out var first, out var second))
            {
                throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed, "key not transposed");
            }

            if (first is null)
            {
                return key; // mT
            }

            int? rank = contextRank;
            long? FromEnd(IOperation dim)
            {
                if (OperationFacts.Integer(dim) is not { } value)
                {
                    throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed, "transpose dims not constant");
                }

                if (value < 0)
                {
                    return -value;
                }

                rank ??= _owner._shapes.Rank(key);
                if (rank is null)
                {
                    throw Decline(DeclineReason.RankUnknown, $"transpose({OperationFacts.Integer(first)}, {OperationFacts.Integer(second)})");
                }

                return rank.Value - value;
            }

            var a = FromEnd(first);
            var b = FromEnd(second!);
            if (!((a == 1 && b == 2) || (a == 2 && b == 1)))
            {
                throw Decline(DeclineReason.ScoresNotQueryTimesKeyTransposed, "transpose not of the last two dims");
            }

            return key;
        }

        private bool TransposeOf(IOperation operation, out IOperation key, out IOperation? first, out IOperation? second)
        {
            key = null!;
            first = null;
            second = null;
            switch (operation)
            {
                case IPropertyReferenceOperation { Property.Name: "mT" } property when property.Instance is { } instance && _owner.IsTensor(instance)
                    && _symbols.IsFromTorchSharp(property.Property):
                    key = instance;
                    return true;
                case IInvocationOperation { TargetMethod.Name: "transpose" or "swapaxes" or "swapdims" } invocation
                    when _symbols.IsFromTorchSharp(invocation.TargetMethod):
                    if (invocation.Instance is { } receiver && _owner.IsTensor(receiver) && invocation.Arguments.Length == 2)
                    {
                        key = receiver;
                        first = OperationFacts.ArgumentAt(invocation, 0)!.Value;
                        second = OperationFacts.ArgumentAt(invocation, 1)!.Value;
                        return true;
                    }

                    if (invocation.TargetMethod.IsStatic && invocation.Arguments.Length == 3)
                    {
                        key = OperationFacts.ArgumentAt(invocation, 0)!.Value;
                        first = OperationFacts.ArgumentAt(invocation, 1)!.Value;
                        second = OperationFacts.ArgumentAt(invocation, 2)!.Value;
                        return true;
                    }

                    return false;
                case IInvocationOperation { TargetMethod.Name: "permute" } permute when permute.Instance is { } permuted && _owner.IsTensor(permuted)
                    && _symbols.IsFromTorchSharp(permute.TargetMethod) && SwapsLastTwo(permute):
                    // permute(0, 1, 3, 2): its length is the rank, so it proves it swaps the last two dims.
                    key = permuted;
                    return true;
                default:
                    return false;
            }
        }

        private static bool SwapsLastTwo(IInvocationOperation permute)
        {
            if (permute.Arguments.Length != 1 || permute.Arguments[0].Value is not IArrayCreationOperation { Initializer: { } order })
            {
                return false;
            }

            var dims = order.ElementValues.Select(OperationFacts.Integer).ToList();
            var rank = dims.Count;
            if (rank < 2 || dims.Any(d => d is null))
            {
                return false;
            }

            for (var i = 0; i < rank - 2; i++)
            {
                if (dims[i] != i)
                {
                    return false;
                }
            }

            return dims[rank - 2] == rank - 1 && dims[rank - 1] == rank - 2;
        }

        // ---- Mask and scale ----

        private (AttentionMask? Mask, List<ScaleFactor> Factors) MaskAndScale(List<PreStep> forward)
        {
            AttentionMask? mask = null;
            var factors = new List<ScaleFactor>();
            PreStep? maskStep = null;
            foreach (var step in forward)
            {
                switch (step.Kind)
                {
                    case PreKind.ScaleMultiply or PreKind.ScaleDivide:
                        if (maskStep is not null)
                        {
                            // A scale after the mask scales the mask too; only a -inf fill survives a positive scale.
                            if (maskStep.Kind != PreKind.Fill || maskStep.Fill is not null || !IsPositive(step.Operand))
                            {
                                throw Decline(DeclineReason.MaskBeforeScale);
                            }
                        }

                        if (OperationFacts.Constant(step.Operand) is not 1.0)
                        {
                            factors.Add(new ScaleFactor(step.Operand, step.Kind == PreKind.ScaleDivide));
                        }

                        break;
                    case PreKind.Additive or PreKind.Fill:
                        if (maskStep is not null)
                        {
                            throw Decline(DeclineReason.SeveralMasks);
                        }

                        maskStep = step;
                        break;
                }
            }

            if (maskStep is not null)
            {
                var kind = maskStep.Kind == PreKind.Additive ? AttentionMaskKind.Additive
                    : maskStep.Fill is null ? AttentionMaskKind.Boolean : AttentionMaskKind.FiniteFill;
                if (maskStep.NullChecked is { } tested && !NullSafe(maskStep.Operand, tested, kind))
                {
                    throw Decline(DeclineReason.MaskNotMappable, "mask under a null check not rooted at the tested value");
                }

                mask = new AttentionMask(kind, maskStep.Operand, maskStep.Fill, maskStep.NullChecked);
            }

            return (mask, factors);
        }

        // Under 'if (m is not null)' the call must pass null when m is null: the mask must be m itself,
        // or a chain of TorchSharp calls on m (written m?.call()), or for a fill a comparison of m.
        private bool NullSafe(IOperation operand, IOperation tested, AttentionMaskKind kind)
        {
            if (kind == AttentionMaskKind.FiniteFill || OperationFacts.Referenced(OperationFacts.Strip(tested)) is not { } testedSymbol)
            {
                return false;
            }

            var current = OperationFacts.Strip(operand);
            if (kind == AttentionMaskKind.Boolean && current is IBinaryOperation { OperatorMethod.Name: "op_Equality" or "op_Inequality" } comparison)
            {
                current = OperationFacts.Strip(comparison.LeftOperand);
            }

            while (true)
            {
                if (OperationFacts.IsReferenceTo(current, testedSymbol))
                {
                    return true;
                }

                if (current is IInvocationOperation { Instance: { } receiver } invocation && _symbols.IsFromTorchSharp(invocation.TargetMethod))
                {
                    current = OperationFacts.Strip(receiver);
                    continue;
                }

                return false;
            }
        }

        private bool IsPositive(IOperation operand)
        {
            var stripped = OperationFacts.Strip(operand);
            if (OperationFacts.Constant(stripped) is { } constant)
            {
                return constant > 0;
            }

            if (stripped is IInvocationOperation invocation && IsMath(invocation.TargetMethod, "Sqrt"))
            {
                return true;
            }

            if (stripped is IInvocationOperation pow && IsMath(pow.TargetMethod, "Pow") && pow.Arguments.Length == 2)
            {
                var @base = pow.Arguments[0].Value;
                return IsPositive(@base) || IsDimension(@base, depth: 0);
            }

            if (stripped is IBinaryOperation { OperatorKind: BinaryOperatorKind.Divide or BinaryOperatorKind.Multiply, OperatorMethod: null } binary)
            {
                return IsPositive(binary.LeftOperand) && IsPositive(binary.RightOperand);
            }

            return IsDimension(stripped, depth: 0) || DefinitionValue(stripped) is { } value && IsPositive(value);
        }

        // A tensor size (non-negative): x.size(d), x.shape[i], or a local holding one.
        private bool IsDimension(IOperation operation, int depth)
        {
            var stripped = OperationFacts.Strip(operation);
            return stripped is IInvocationOperation { TargetMethod.Name: "size" } size && size.Instance is { } instance && _owner.IsTensor(instance)
                || stripped is IArrayElementReferenceOperation { ArrayReference: IPropertyReferenceOperation { Property.Name: "shape" } shape } && shape.Instance is { } owner && _owner.IsTensor(owner)
                || depth < 4 && DefinitionValue(stripped) is { } value && IsDimension(value, depth + 1);
        }

        private static bool IsMath(IMethodSymbol method, string name) =>
            method.Name == name && method.ContainingType is { Name: "Math" or "MathF", ContainingNamespace: { Name: "System", ContainingNamespace.IsGlobalNamespace: true } };

        // The value a local was declared with when it is never reassigned (e.g. 'var scale = 1.0 / Math.Sqrt(d);').
        private IOperation? DefinitionValue(IOperation operation)
        {
            if (operation is not ILocalReferenceOperation local || OperationFacts.Anchor(operation) is not { } anchor)
            {
                return null;
            }

            var definition = StraightLineDefinitions.Find(local.Local, anchor, _owner.IsInPlaceStep).Definition;
            return definition is { Kind: DefinitionKind.Value, NullChecked: null } ? definition.Operation : null;
        }

        // ---- Default scale: the factors provably make 1/sqrt(E) ----

        private bool IsDefaultScale(List<ScaleFactor> factors, IOperation query, IOperation key)
        {
            if (factors.Count != 1)
            {
                return false;
            }

            var factor = factors[0];
            var dims = new List<object>();
            AddDim(dims, _owner._shapes.LastDim(query));
            AddDim(dims, _owner._shapes.LastDim(key));
            return factor.Divides ? IsSqrtOfE(factor.Value, query, key, dims, 0) : IsInverseSqrtOfE(factor.Value, query, key, dims, 0);
        }

        private static void AddDim(List<object> dims, object? dim)
        {
            if (dim is not null)
            {
                dims.Add(dim);
            }
        }

        private bool IsSqrtOfE(IOperation value, IOperation query, IOperation key, List<object> dims, int depth)
        {
            if (depth > 6)
            {
                return false;
            }

            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Constant(stripped) is { } constant)
            {
                return dims.OfType<long>().Any(e => e > 0 && Math.Abs(constant - Math.Sqrt(e)) <= 1e-6 * Math.Sqrt(e));
            }

            if (stripped is IInvocationOperation invocation)
            {
                if (IsMath(invocation.TargetMethod, "Sqrt") && invocation.Arguments.Length == 1)
                {
                    return IsE(invocation.Arguments[0].Value, query, key, dims, depth + 1);
                }

                if (IsMath(invocation.TargetMethod, "Pow") && invocation.Arguments.Length == 2 && OperationFacts.Constant(invocation.Arguments[1].Value) is 0.5)
                {
                    return IsE(invocation.Arguments[0].Value, query, key, dims, depth + 1);
                }
            }

            return DefinitionValue(stripped) is { } defined && IsSqrtOfE(defined, query, key, dims, depth + 1);
        }

        private bool IsInverseSqrtOfE(IOperation value, IOperation query, IOperation key, List<object> dims, int depth)
        {
            if (depth > 6)
            {
                return false;
            }

            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Constant(stripped) is { } constant)
            {
                return dims.OfType<long>().Any(e => e > 0 && Math.Abs(constant * Math.Sqrt(e) - 1) <= 1e-6);
            }

            if (stripped is IBinaryOperation { OperatorKind: BinaryOperatorKind.Divide, OperatorMethod: null } division
                && OperationFacts.Constant(division.LeftOperand) is 1.0)
            {
                return IsSqrtOfE(division.RightOperand, query, key, dims, depth + 1);
            }

            if (stripped is IInvocationOperation invocation && IsMath(invocation.TargetMethod, "Pow") && invocation.Arguments.Length == 2
                && OperationFacts.Constant(invocation.Arguments[1].Value) is -0.5)
            {
                return IsE(invocation.Arguments[0].Value, query, key, dims, depth + 1);
            }

            return DefinitionValue(stripped) is { } defined && IsInverseSqrtOfE(defined, query, key, dims, depth + 1);
        }

        // E, the query's (= the key's) last dim: x.size(-1), x.shape[^1], x.shape[r - 1], or what the
        // tensor was sized with (a constant, or a local/parameter/field passed as view's last size).
        private bool IsE(IOperation value, IOperation query, IOperation key, List<object> dims, int depth)
        {
            if (depth > 8)
            {
                return false;
            }

            var stripped = OperationFacts.Strip(value);
            if (OperationFacts.Constant(stripped) is { } constant)
            {
                return dims.OfType<long>().Any(e => e == constant);
            }

            if (stripped is IInvocationOperation { TargetMethod.Name: "size" } size && size.Instance is { } sized && _owner.IsTensor(sized)
                && size.Arguments.Length == 1 && OperationFacts.Integer(size.Arguments[0].Value) is { } dim)
            {
                return IsLast(sized, dim) && SameLastDim(sized, query, key, dims);
            }

            if (stripped is IArrayElementReferenceOperation { ArrayReference: IPropertyReferenceOperation { Property.Name: "shape" } shape } element
                && shape.Instance is { } shaped && _owner.IsTensor(shaped) && element.Indices.Length == 1)
            {
                var index = OperationFacts.Strip(element.Indices[0]);
                var last = index is IUnaryOperation { OperatorKind: UnaryOperatorKind.Hat } hat && OperationFacts.Integer(hat.Operand) == 1
                    || OperationFacts.Integer(index) is { } position && IsLast(shaped, position);
                return last && SameLastDim(shaped, query, key, dims);
            }

            if (OperationFacts.Referenced(stripped) is { } symbol && dims.OfType<ISymbol>().Any(d => SymbolEqualityComparer.Default.Equals(d, symbol))
                && !IsReassigned(symbol))
            {
                return true;
            }

            return DefinitionValue(stripped) is { } defined && IsE(defined, query, key, dims, depth + 1);
        }

        private bool IsLast(IOperation tensor, long dim) => dim == -1 || _owner._shapes.Rank(tensor) is { } rank && dim == rank - 1;

        private bool SameLastDim(IOperation tensor, IOperation query, IOperation key, List<object> dims)
        {
            var symbol = OperationFacts.Referenced(OperationFacts.Strip(tensor));
            if (symbol is not null
                && (OperationFacts.IsReferenceTo(query, symbol) || OperationFacts.IsReferenceTo(key, symbol)))
            {
                return true;
            }

            return _owner._shapes.LastDim(tensor) is { } dim && dims.Any(d => Equals(d, dim) || d is ISymbol s && dim is ISymbol t && SymbolEqualityComparer.Default.Equals(s, t));
        }

        // A size symbol proves E only while it keeps its value: never assigned in this member after its declaration.
        private bool IsReassigned(ISymbol symbol) => MemberIndex.For(_root).IsWritten(symbol);

        // ---- Safety of the rewrite ----

        private void CheckWrapper(AttentionMask? mask, AttentionDropout? dropout, bool needsScale)
        {
            if (!_owner._hasRuntime)
            {
                throw Decline(DeclineReason.NoRuntime);
            }

            var wrapper = _owner._wrapper;
            if (wrapper is null || (mask is not null && wrapper.Mask is null) || (dropout is not null && wrapper.Dropout is null) || (needsScale && wrapper.Scale is null))
            {
                throw Decline(DeclineReason.WrapperLacksParameter);
            }
        }

        private void CheckHost()
        {
            var syntax = _final.Syntax;
            for (var node = syntax.Parent; node is not null; node = node.Parent)
            {
                switch (node)
                {
                    case Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax
                        or Microsoft.CodeAnalysis.CSharp.Syntax.StructDeclarationSyntax
                        or Microsoft.CodeAnalysis.CSharp.Syntax.RecordDeclarationSyntax:
                        return;
                    case Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeDeclarationSyntax:
                    case Microsoft.CodeAnalysis.CSharp.Syntax.GlobalStatementSyntax:
                        throw Decline(DeclineReason.NoHostType);
                }
            }

            throw Decline(DeclineReason.NoHostType);
        }

        // Every reference to a chain local must be the chain's own, except before its first chain
        // definition (an unrelated earlier value) and after the final statement when that statement
        // assigns the local the result. Returns the local the final statement must now declare.
        private ILocalSymbol? CheckIntermediates()
        {
            if (_intermediates.Count == 0)
            {
                return null;
            }

            var index = MemberIndex.For(_root);
            var killed = KilledByFinalStatement();
            ILocalSymbol? outputLocal = null;
            var loop = EnclosingLoop(_final);
            foreach (var pair in _intermediates)
            {
                var variable = pair.Key;
                if (variable is IParameterSymbol { RefKind: not RefKind.None } or ILocalSymbol { IsRef: true })
                {
                    throw Decline(DeclineReason.IntermediateUsedElsewhere, variable.Name + " is passed by reference");
                }

                var firstDefinition = pair.Value.Min(d => d.Statement.Syntax.SpanStart);
                var declaredByChain = pair.Value.Any(d => d.IsDeclaration);
                var declaredInsideLoop = loop is null || variable is ILocalSymbol local && IsDeclaredWithin(local, loop);
                var isKilled = killed is not null && SymbolEqualityComparer.Default.Equals(killed, variable);
                foreach (var indexed in index.References(variable))
                {
                    var reference = indexed.Operation;
                    if (reference is not (ILocalReferenceOperation or IParameterReferenceOperation))
                    {
                        continue;
                    }

                    if (_consumedReferences.Contains(reference))
                    {
                        continue;
                    }

                    var position = reference.Syntax.SpanStart;
                    var inNestedFunction = OperationFacts.Function(reference) != OperationFacts.Function(_final);
                    if (!inNestedFunction && declaredInsideLoop && !declaredByChain && position < firstDefinition)
                    {
                        continue; // an earlier, unrelated value of the same local
                    }

                    if (!inNestedFunction && isKilled && _finalAnchor is not null && position >= _finalAnchor.Syntax.SpanStart)
                    {
                        continue; // the output, assigned by the final statement, and what reads it later
                    }

                    throw Decline(DeclineReason.IntermediateUsedElsewhere, variable.Name);
                }

                if (isKilled && declaredByChain)
                {
                    var declaration = pair.Value.First(d => d.IsDeclaration).Statement;
                    if (variable is not ILocalSymbol killedLocal || declaration.Parent != _finalAnchor!.Parent)
                    {
                        throw Decline(DeclineReason.IntermediateUsedElsewhere, variable.Name);
                    }

                    outputLocal = killedLocal;
                }
            }

            return outputLocal;
        }

        // 'x = <final product>;': the final statement gives x a new value.
        private ISymbol? KilledByFinalStatement() =>
            _finalAnchor is IExpressionStatementOperation { Operation: ISimpleAssignmentOperation assignment }
                && OperationFacts.Strip(assignment.Value) == _final
                ? OperationFacts.Variable(assignment.Target)
                : null;

        private static ILoopOperation? EnclosingLoop(IOperation operation)
        {
            for (var current = operation.Parent; current is not null; current = current.Parent)
            {
                if (current is ILoopOperation loop)
                {
                    return loop;
                }

                if (current is IAnonymousFunctionOperation or ILocalFunctionOperation)
                {
                    return null;
                }
            }

            return null;
        }

        private static bool IsDeclaredWithin(ILocalSymbol local, IOperation scope)
        {
            foreach (var reference in local.DeclaringSyntaxReferences)
            {
                if (scope.Syntax.Span.Contains(reference.Span))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>A value the call will read, in the call's argument order.</summary>
        private sealed record Kept(IOperation Operation, int Order);

        private List<Kept> KeptValues(IOperation query, IOperation key, IOperation value, AttentionMask? mask, AttentionDropout? dropout, List<ScaleFactor> factors)
        {
            var kept = new List<Kept> { new(query, 0), new(key, 1), new(value, 2) };
            if (mask is not null)
            {
                kept.Add(new Kept(mask.Operand, 3));
                if (mask.Fill is not null)
                {
                    kept.Add(new Kept(mask.Fill, 3));
                    if (DtypeSource(query, key, value) is null)
                    {
                        throw Decline(DeclineReason.MaskNotMappable, "no simple tensor to take the dtype from");
                    }
                }
            }

            if (dropout is not null)
            {
                foreach (var part in new[] { dropout.Module, dropout.Probability, dropout.Training })
                {
                    if (part is not null)
                    {
                        kept.Add(new Kept(part, 4));
                    }
                }
            }

            foreach (var factor in factors)
            {
                kept.Add(new Kept(factor.Value, 5));
            }

            return kept;
        }

        // Moved values must still read the same thing at the final product, and moving them must not
        // reorder calls that have effects. Statements the chain leaves in between must have none.
        private void CheckMovedValues(List<Kept> kept)
        {
            if (_finalAnchor is null)
            {
                return;
            }

            var finalStart = _finalAnchor.Syntax.SpanStart;
            var between = StatementsBetween(FirstChainPosition(), finalStart);
            foreach (var statement in between)
            {
                if (!PureStatement(statement))
                {
                    throw Decline(DeclineReason.SideEffects, "statement between the steps");
                }
            }

            foreach (var item in kept)
            {
                var anchor = OperationFacts.Anchor(item.Operation);
                var start = anchor?.Syntax.SpanStart ?? finalStart;
                var written = ReadSymbols(item.Operation);
                foreach (var statement in between.Where(b => b.Syntax.SpanStart > start))
                {
                    foreach (var symbol in written)
                    {
                        if (OperationFacts.WritesTo(statement, symbol))
                        {
                            throw Decline(DeclineReason.MovedValueChanges, symbol.Name);
                        }
                    }
                }
            }

            // Moving values must not reorder an effect with anything that could observe it: an impure
            // value may change places only with values that read nothing but locals and constants.
            foreach (var moved in kept.Where(k => !Pure(k.Operation)))
            {
                foreach (var other in kept)
                {
                    if (other == moved || other.Order == moved.Order)
                    {
                        continue;
                    }

                    var wasBefore = moved.Operation.Syntax.SpanStart < other.Operation.Syntax.SpanStart;
                    var isBefore = moved.Order < other.Order;
                    if (wasBefore != isBefore && !ReadsOnlyLocals(other.Operation))
                    {
                        throw Decline(DeclineReason.SideEffects, "moved values with side effects");
                    }
                }
            }
        }

        private bool ReadsOnlyLocals(IOperation operation) =>
            Pure(operation) && !operation.DescendantsAndSelf().Any(n => n is IFieldReferenceOperation
                || n is IPropertyReferenceOperation property && !_symbols.IsFromTorchSharp(property.Property));

        private int FirstChainPosition()
        {
            var first = _finalAnchor!.Syntax.SpanStart;
            foreach (var statement in _consumedStatements)
            {
                first = Math.Min(first, statement.Syntax.SpanStart);
            }

            return first;
        }

        // Statements of the member (at any depth) that start in [from, to), outside the chain's own
        // statements and not enclosing the final statement.
        private List<IOperation> StatementsBetween(int from, int to)
        {
            var result = new List<IOperation>();
            if (from >= to)
            {
                return result;
            }

            foreach (var operation in MemberIndex.For(_root).Statements)
            {
                if (operation.IsImplicit && operation is IBlockOperation)
                {
                    continue;
                }

                var start = operation.Syntax.SpanStart;
                if (start < from || start >= to || _consumedStatements.Contains(operation)
                    || OperationFacts.IsWithin(_final, operation)
                    || _consumedStatements.Any(c => OperationFacts.IsWithin(operation, c)))
                {
                    continue;
                }

                if (result.Any(r => OperationFacts.IsWithin(operation, r)))
                {
                    continue;
                }

                result.Add(operation);
            }

            return result;
        }

        private static List<ISymbol> ReadSymbols(IOperation operation)
        {
            var symbols = new List<ISymbol>();
            foreach (var node in operation.DescendantsAndSelf())
            {
                if (node is ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation
                    && OperationFacts.Referenced(node) is { } symbol && !symbols.Contains(symbol, SymbolEqualityComparer.Default))
                {
                    symbols.Add(symbol);
                }
            }

            return symbols;
        }

        // A directive anywhere from the first step to the final product could keep (or drop) code
        // that reads a removed local in another configuration.
        private void CheckDirectives()
        {
            if (_final.Syntax.ContainsDirectives || _finalAnchor?.Syntax.ContainsDirectives == true)
            {
                throw Decline(DeclineReason.PreprocessorDirective);
            }

            if (_finalAnchor is null || _consumedStatements.Count == 0)
            {
                return;
            }

            // Directive trivia (and the disabled text between #if and #endif) belong to the next
            // token, so they show up on a statement of the region or on the final statement.
            var first = FirstChainPosition();
            var end = _finalAnchor.Syntax.SpanStart;
            foreach (var statement in MemberIndex.For(_root).Statements)
            {
                var start = statement.Syntax.SpanStart;
                if (start >= first && start <= end && statement.Syntax.ContainsDirectives)
                {
                    throw Decline(DeclineReason.PreprocessorDirective);
                }
            }
        }

        // The chain's statements, plus declarations of locals that only fed removed code (e.g. a
        // default scale), found until nothing more is freed.
        private ImmutableArray<IOperation> RemovedStatements(List<Kept> kept)
        {
            var removed = new HashSet<IOperation>(_consumedStatements);
            var keptOperations = kept.Select(k => k.Operation).ToList();
            bool IsRemoved(IOperation reference) =>
                (removed.Any(r => OperationFacts.IsWithin(reference, r)) || OperationFacts.IsWithin(reference, _final))
                && !keptOperations.Any(k => OperationFacts.IsWithin(reference, k));

            var changed = true;
            while (changed)
            {
                changed = false;
                var candidates = new Dictionary<ISymbol, List<IOperation>>(SymbolEqualityComparer.Default);
                foreach (var operation in _root.Descendants())
                {
                    if (operation is ILocalReferenceOperation local)
                    {
                        if (!candidates.TryGetValue(local.Local, out var list))
                        {
                            list = new List<IOperation>();
                            candidates.Add(local.Local, list);
                        }

                        list.Add(operation);
                    }
                }

                foreach (var pair in candidates)
                {
                    if (pair.Key is not ILocalSymbol local || !pair.Value.Any(IsRemoved) || !pair.Value.All(IsRemoved))
                    {
                        continue;
                    }

                    var declaration = DeclarationStatement(local);
                    if (declaration is null || removed.Contains(declaration) || !Pure(declaration))
                    {
                        continue;
                    }

                    removed.Add(declaration);
                    changed = true;
                }
            }

            return removed.OrderBy(s => s.Syntax.SpanStart).ToImmutableArray();
        }

        private IOperation? DeclarationStatement(ILocalSymbol local)
        {
            foreach (var operation in _root.Descendants())
            {
                if (operation is IVariableDeclarationGroupOperation group && group.Parent is IBlockOperation
                    && group.Declarations.Length == 1 && group.Declarations[0].Declarators.Length == 1
                    && SymbolEqualityComparer.Default.Equals(group.Declarations[0].Declarators[0].Symbol, local))
                {
                    return group;
                }
            }

            return null;
        }

        // ---- Purity ----

        private bool PureStatement(IOperation statement)
        {
            foreach (var operation in statement.DescendantsAndSelf())
            {
                switch (operation)
                {
                    case IVariableDeclarationGroupOperation or IVariableDeclarationOperation or IVariableDeclaratorOperation or IVariableInitializerOperation:
                    case IExpressionStatementOperation or IBlockOperation or IEmptyOperation:
                        continue;
                    case ISimpleAssignmentOperation { Target: ILocalReferenceOperation }:
                        continue;
                    default:
                        if (!PureNode(operation))
                        {
                            return false;
                        }

                        continue;
                }
            }

            return true;
        }

        private bool Pure(IOperation operation)
        {
            foreach (var node in operation.DescendantsAndSelf())
            {
                if (node is IVariableDeclarationGroupOperation or IVariableDeclarationOperation or IVariableDeclaratorOperation or IVariableInitializerOperation)
                {
                    continue;
                }

                if (!PureNode(node))
                {
                    return false;
                }
            }

            return true;
        }

        private bool PureNode(IOperation node)
        {
            switch (node)
            {
                case ILiteralOperation or ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation
                    or IInstanceReferenceOperation or IDefaultValueOperation or ITypeOfOperation or INameOfOperation
                    or IArgumentOperation or IArrayElementReferenceOperation or IArrayCreationOperation or IArrayInitializerOperation
                    or IRangeOperation or IConditionalOperation or IIsPatternOperation or IIsTypeOperation
                    or IPatternOperation or IConditionalAccessOperation or IConditionalAccessInstanceOperation or ITupleOperation
                    or IInterpolatedStringOperation or IInterpolatedStringContentOperation or IParenthesizedOperation
                    or ICoalesceOperation or ISizeOfOperation:
                    return true;
                case IPropertyReferenceOperation property:
                    return !_symbols.IsModule(property.Property.ContainingType) || property.Property.Name is "training" or "p";
                case IConversionOperation conversion:
                    return conversion.OperatorMethod is null || _symbols.IsFromTorchSharp(conversion.OperatorMethod);
                case IBinaryOperation binary:
                    return binary.OperatorMethod is null || _symbols.IsFromTorchSharp(binary.OperatorMethod);
                case IUnaryOperation unary:
                    return unary.OperatorMethod is null || _symbols.IsFromTorchSharp(unary.OperatorMethod);
                case IObjectCreationOperation creation:
                    return creation.Constructor is { } constructor && _symbols.IsFromTorchSharp(constructor) && creation.Initializer is null;
                case IInvocationOperation invocation:
                    return PureMethod(invocation);
                default:
                    return false;
            }
        }

        private bool PureMethod(IInvocationOperation invocation)
        {
            var method = invocation.TargetMethod;
            if (IsMath(method, method.Name))
            {
                return true;
            }

            if (method.ContainingType is { Name: "Enumerable", ContainingNamespace.Name: "Linq" } && method.Name is "Last" or "First" or "Count")
            {
                return true;
            }

            if (!_symbols.IsFromTorchSharp(method))
            {
                return false;
            }

            var name = method.Name;
            if (name.EndsWith("_", StringComparison.Ordinal) || name is "forward" or "call" || _symbols.IsModule(method.ContainingType)
                || name.StartsWith("rand", StringComparison.Ordinal) || name.StartsWith("Dispose", StringComparison.Ordinal)
                || name.StartsWith("MoveTo", StringComparison.Ordinal) || name.StartsWith("Detach", StringComparison.Ordinal)
                || name is "dropout" or "bernoulli" or "multinomial" or "normal" or "poisson" or "manual_seed" or "backward" or "print" or "ToString")
            {
                return false;
            }

            return true;
        }
    }
}
