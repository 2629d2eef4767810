using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>The recogniser's steps: single operations, the steps between the product and the softmax, the product itself, and the mask and scale they make.</summary>
internal sealed partial class AttentionChainRecognizer
{
    private sealed partial class Run
    {
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

                        // 'q *= s;' rebinds q to a new tensor. 'q.mul_(s);' would scale the caller's tensor (or
                        // what q views) in place, which removing the statement would change: not a pre-scale.
                        if (definition.Kind == DefinitionKind.Compound && IsScaleDefinition(definition))
                        {
                            Consume(variable, definition, stripped);

                            // The target is read too, for the value before the step.
                            factors.Add(FromDefinition(definition));
                            current = OperationFacts.Strip(definition.Target!);
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
    }
}
