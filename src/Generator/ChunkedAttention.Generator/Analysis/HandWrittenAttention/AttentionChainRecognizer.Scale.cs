using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>The recogniser's proof that a scale is SDPA's default 1/sqrt(E).</summary>
internal sealed partial class AttentionChainRecognizer
{
    private sealed partial class Run
    {
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
    }
}
