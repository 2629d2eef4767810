using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// What the code of one method proves about a tensor's shape: its rank, and what its last dim
/// equals (a constant, or a local, parameter or field the code sized it with). Proofs come only from
/// operations whose result shape is fixed by their arguments (<c>view</c>, <c>reshape</c>,
/// <c>permute</c>, <c>expand</c>, the factories, <c>bmm</c>) and from operations that keep the shape,
/// followed through straight-line locals. Anything else (a parameter, a call into user code) proves
/// nothing, and the recogniser then declines what needs the proof.
/// </summary>
internal sealed class TensorShapes
{
    private const int MaxDepth = 24;

    // Tensor methods whose result has the receiver's shape.
    private static readonly HashSet<string> ShapeKeeping = new()
    {
        "contiguous", "clone", "detach", "to", "type", "type_as", "to_type", "float", "double", "half", "bfloat16",
        "softmax", "log_softmax", "masked_fill", "masked_fill_", "mul", "mul_", "div", "div_", "add", "add_", "sub", "sub_",
        "neg", "exp", "log", "sqrt", "rsqrt", "abs", "sigmoid", "tanh", "relu", "gelu", "silu", "cos", "sin", "pow",
        "tril", "triu", "roll", "logical_not", "eq", "ne", "lt", "le", "gt", "ge", "MoveToOuterDisposeScope",
        "requires_grad_", "cpu", "cuda", "where", "clamp", "clamp_min", "clamp_max", "nan_to_num",
    };

    // Tensor methods whose result has the receiver's rank (the dims may be reordered or resized).
    private static readonly HashSet<string> RankKeeping = new()
    {
        "transpose", "swapaxes", "swapdims", "repeat_interleave", "narrow", "slice", "flip", "mT", "repeat",
    };

    private static readonly HashSet<string> Factories = new() { "zeros", "ones", "randn", "rand", "empty", "full", "zeros_like", "ones_like", "randn_like", "empty_like" };

    private readonly AttentionSymbols _symbols;
    private readonly InPlaceSteps _inPlace;

    public TensorShapes(AttentionSymbols symbols, InPlaceSteps inPlace)
    {
        _symbols = symbols;
        _inPlace = inPlace;
    }

    /// <summary>The rank of <paramref name="tensor"/>, or null when the code does not prove it.</summary>
    public int? Rank(IOperation tensor) => Rank(tensor, 0);

    /// <summary>
    /// What the last dim of <paramref name="tensor"/> equals: a <see cref="long"/> constant or the
    /// <see cref="ISymbol"/> (local, parameter, field, property) it was sized with; null when unknown.
    /// </summary>
    public object? LastDim(IOperation tensor) => LastDim(tensor, 0);

    private int? Rank(IOperation operation, int depth)
    {
        if (depth > MaxDepth)
        {
            return null;
        }

        operation = OperationFacts.Strip(operation);
        switch (operation)
        {
            case ILocalReferenceOperation or IParameterReferenceOperation:
                return Through(operation, depth, Rank);
            case IPropertyReferenceOperation { Property.Name: "mT" or "T" } property when property.Instance is { } instance && _symbols.IsTensor(property.Type):
                return property.Property.Name == "mT" ? Rank(instance, depth + 1) : null;
            case IPropertyReferenceOperation { Property.IsIndexer: true } indexer when indexer.Instance is { } indexed && _symbols.IsTensor(indexed.Type):
                return IndexedRank(indexer, Rank(indexed, depth + 1));
            case IArrayElementReferenceOperation element when OperationFacts.Strip(element.ArrayReference) is { } array:
                return PieceRank(array, depth);
            case IBinaryOperation binary when _symbols.IsTensor(binary.Type):
                return Broadcast(binary.LeftOperand, binary.RightOperand, depth);
            case IInvocationOperation invocation:
                return InvocationRank(invocation, depth);
            default:
                return null;
        }
    }

    private int? InvocationRank(IInvocationOperation invocation, int depth)
    {
        var method = invocation.TargetMethod;
        if (!_symbols.IsFromTorchSharp(method))
        {
            return null;
        }

        if (invocation.Instance is { } receiver && _symbols.IsTensor(receiver.Type))
        {
            switch (method.Name)
            {
                case "view" or "reshape" or "permute" or "expand":
                    return SizeCount(invocation);
                case "unsqueeze":
                    return Rank(receiver, depth + 1) + 1;
                case "bmm":
                    return 3;
                case "matmul":
                    return MatmulRank(receiver, invocation.Arguments.Length > 0 ? invocation.Arguments[0].Value : null, depth);
            }

            if (ShapeKeeping.Contains(method.Name) || RankKeeping.Contains(method.Name))
            {
                return Rank(receiver, depth + 1);
            }

            return null;
        }

        if (method.IsStatic && SymbolEqualityComparer.Default.Equals(method.ContainingType, _symbols.Torch))
        {
            switch (method.Name)
            {
                case "bmm":
                    return 3;
                case "matmul" when invocation.Arguments.Length >= 2:
                    return MatmulRank(invocation.Arguments[0].Value, invocation.Arguments[1].Value, depth);
                case "transpose" or "swapaxes" or "swapdims" or "softmax" or "tril" or "triu" or "logical_not" or "where" when invocation.Arguments.Length > 0:
                    return Rank(invocation.Arguments[method.Name == "where" && invocation.Arguments.Length > 1 ? 1 : 0].Value, depth + 1);
            }

            if (Factories.Contains(method.Name))
            {
                return method.Name.EndsWith("_like") && invocation.Arguments.Length > 0
                    ? Rank(invocation.Arguments[0].Value, depth + 1)
                    : FactoryRank(invocation);
            }
        }

        if (_symbols.IsFunctional(method, "softmax") || _symbols.IsFunctional(method, "dropout") || _symbols.IsSpecial(method, "softmax"))
        {
            return invocation.Arguments.Length > 0 ? Rank(invocation.Arguments[0].Value, depth + 1) : null;
        }

        // Module calls: only dropout keeps the shape.
        if (method.Name is "forward" or "call" && invocation.Instance is { } module && _symbols.Dropout is not null
            && SymbolEqualityComparer.Default.Equals(module.Type, _symbols.Dropout) && invocation.Arguments.Length == 1)
        {
            return Rank(invocation.Arguments[0].Value, depth + 1);
        }

        return null;
    }

    private int? MatmulRank(IOperation? left, IOperation? right, int depth)
    {
        if (left is null || right is null || Rank(left, depth + 1) is not { } a || Rank(right, depth + 1) is not { } b || a < 2 || b < 2)
        {
            return null;
        }

        return a > b ? a : b;
    }

    private int? Broadcast(IOperation left, IOperation right, int depth)
    {
        var leftIsTensor = _symbols.IsTensor(left.Type);
        var rightIsTensor = _symbols.IsTensor(right.Type);
        if (leftIsTensor && rightIsTensor)
        {
            return Rank(left, depth + 1) is { } a && Rank(right, depth + 1) is { } b ? (a > b ? a : b) : null;
        }

        return leftIsTensor ? Rank(left, depth + 1) : rightIsTensor ? Rank(right, depth + 1) : null;
    }

    // x.chunk(n, dim)[i], x.split(...)[i], or a local holding such an array.
    private int? PieceRank(IOperation array, int depth)
    {
        if (OperationFacts.Variable(array) is not null)
        {
            return Through(array, depth, (value, d) => PieceRank(OperationFacts.Strip(value), d));
        }

        return array is IInvocationOperation { TargetMethod.Name: "chunk" or "split" or "tensor_split" or "unbind" } pieces
            && pieces.Instance is { } whole && _symbols.IsTensor(whole.Type) && _symbols.IsFromTorchSharp(pieces.TargetMethod)
            ? (pieces.TargetMethod.Name == "unbind" ? Rank(whole, depth + 1) - 1 : Rank(whole, depth + 1))
            : null;
    }

    // x[a, b, ...]: a range keeps its dim, an integer drops it, None adds one; other indices prove nothing.
    private static int? IndexedRank(IPropertyReferenceOperation indexer, int? rank)
    {
        if (rank is null)
        {
            return null;
        }

        var result = rank.Value;
        foreach (var index in Indices(indexer))
        {
            switch (Classify(index))
            {
                case Index.Range or Index.Ellipsis:
                    break;
                case Index.Integer:
                    result--;
                    break;
                case Index.NewAxis:
                    result++;
                    break;
                default:
                    return null;
            }
        }

        return result;
    }

    private enum Index
    {
        Unknown,
        Range,
        Integer,
        NewAxis,
        Ellipsis,
    }

    private static IEnumerable<IOperation> Indices(IPropertyReferenceOperation indexer)
    {
        foreach (var argument in indexer.Arguments)
        {
            if (argument.ArgumentKind == ArgumentKind.ParamArray && argument.Value is IArrayCreationOperation { Initializer: { } initializer })
            {
                foreach (var element in initializer.ElementValues)
                {
                    yield return element;
                }
            }
            else
            {
                yield return argument.Value;
            }
        }
    }

    private static Index Classify(IOperation index)
    {
        var value = index;
        while (value is IConversionOperation conversion)
        {
            value = conversion.Operand;
        }

        if (value is IRangeOperation)
        {
            return Index.Range;
        }

        if (value.Type?.SpecialType is SpecialType.System_Int32 or SpecialType.System_Int64)
        {
            return Index.Integer;
        }

        if (value is IFieldReferenceOperation or IPropertyReferenceOperation)
        {
            var name = OperationFacts.Referenced(value)?.Name;
            if (name is "None" or "Null" or "newaxis")
            {
                return Index.NewAxis;
            }

            if (name is "Ellipsis" or "Colon")
            {
                return name == "Colon" ? Index.Range : Index.Ellipsis;
            }
        }

        return Index.Unknown;
    }

    private static int? SizeCount(IInvocationOperation invocation)
    {
        if (invocation.Arguments.Length == 0)
        {
            return null;
        }

        var sizes = invocation.Arguments[0];
        if (sizes.Value is IArrayCreationOperation { Initializer: { } initializer })
        {
            return initializer.ElementValues.Length;
        }

        return null;
    }

    // torch.zeros(2, 3, 4, 5, dtype: ...), torch.zeros(new long[] { ... }), torch.ones(rows, columns).
    private static int? FactoryRank(IInvocationOperation invocation)
    {
        var count = 0;
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Parameter is not { } parameter)
            {
                return null;
            }

            if (parameter.Type is IArrayTypeSymbol)
            {
                return argument.Value is IArrayCreationOperation { Initializer: { } initializer } ? initializer.ElementValues.Length : null;
            }

            if (parameter.Name is "size" or "rows" or "columns" || parameter.Name.StartsWith("dim", System.StringComparison.Ordinal))
            {
                count++;
            }
        }

        return count > 0 ? count : null;
    }

    private object? LastDim(IOperation operation, int depth)
    {
        if (depth > MaxDepth)
        {
            return null;
        }

        operation = OperationFacts.Strip(operation);
        switch (operation)
        {
            case ILocalReferenceOperation or IParameterReferenceOperation:
                return Through(operation, depth, LastDim);
            case IPropertyReferenceOperation { Property.IsIndexer: true } indexer when indexer.Instance is { } indexed && _symbols.IsTensor(indexed.Type):
                return KeepsLastDim(indexer, Rank(indexed, depth + 1)) ? LastDim(indexed, depth + 1) : null;
            case IArrayElementReferenceOperation element:
                return PieceLastDim(OperationFacts.Strip(element.ArrayReference), depth);
            case IBinaryOperation binary when _symbols.IsTensor(binary.Type):
                var leftIsTensor = _symbols.IsTensor(binary.LeftOperand.Type);
                var rightIsTensor = _symbols.IsTensor(binary.RightOperand.Type);
                return leftIsTensor && !rightIsTensor ? LastDim(binary.LeftOperand, depth + 1)
                    : rightIsTensor && !leftIsTensor ? LastDim(binary.RightOperand, depth + 1)
                    : null;
            case IInvocationOperation invocation when _symbols.IsFromTorchSharp(invocation.TargetMethod):
                return InvocationLastDim(invocation, depth);
            default:
                return null;
        }
    }

    private object? InvocationLastDim(IInvocationOperation invocation, int depth)
    {
        var name = invocation.TargetMethod.Name;
        if (invocation.Instance is not { } receiver || !_symbols.IsTensor(receiver.Type))
        {
            if (name == "matmul" && invocation.TargetMethod.IsStatic && invocation.Arguments.Length >= 2)
            {
                return LastDim(invocation.Arguments[1].Value, depth + 1);
            }

            return (_symbols.IsFunctional(invocation.TargetMethod, "dropout") || _symbols.IsFunctional(invocation.TargetMethod, "softmax"))
                && invocation.Arguments.Length > 0
                ? LastDim(invocation.Arguments[0].Value, depth + 1)
                : null;
        }

        switch (name)
        {
            case "view" or "reshape" or "expand":
                if (invocation.Arguments.Length > 0 && invocation.Arguments[0].Value is IArrayCreationOperation { Initializer: { } sizes } && sizes.ElementValues.Length > 0)
                {
                    var last = sizes.ElementValues[sizes.ElementValues.Length - 1];
                    if (OperationFacts.Integer(last) is { } constant)
                    {
                        return constant == -1 && name == "expand" ? LastDim(receiver, depth + 1) : constant >= 0 ? constant : null;
                    }

                    return DimSymbol(last);
                }

                return null;
            case "transpose" or "swapaxes" or "swapdims":
                var rank = Rank(receiver, depth + 1);
                return invocation.Arguments.Length == 2
                    && !TouchesLast(invocation.Arguments[0].Value, rank)
                    && !TouchesLast(invocation.Arguments[1].Value, rank)
                    ? LastDim(receiver, depth + 1)
                    : null;
            case "permute":
                var permutationRank = Rank(receiver, depth + 1);
                return invocation.Arguments.Length > 0
                    && invocation.Arguments[0].Value is IArrayCreationOperation { Initializer: { } order }
                    && order.ElementValues.Length > 0
                    && OperationFacts.Integer(order.ElementValues[order.ElementValues.Length - 1]) is { } lastIndex
                    && (lastIndex == -1 || (permutationRank is { } r && lastIndex == r - 1))
                    ? LastDim(receiver, depth + 1)
                    : null;
            case "unsqueeze":
                var unsqueezeRank = Rank(receiver, depth + 1);
                return invocation.Arguments.Length == 1
                    && OperationFacts.Integer(invocation.Arguments[0].Value) is { } at
                    && ((at >= 0 && (unsqueezeRank is null || at <= unsqueezeRank.Value - 1)) || (unsqueezeRank is { } ur && at < -1 && at >= -(ur + 1)))
                    ? LastDim(receiver, depth + 1)
                    : null;
            case "matmul":
                return invocation.Arguments.Length > 0 ? LastDim(invocation.Arguments[0].Value, depth + 1) : null;
        }

        return ShapeKeeping.Contains(name) || name == "repeat_interleave" && !TouchesLastArgument(invocation, "dim", Rank(receiver, depth + 1))
            ? LastDim(receiver, depth + 1)
            : null;
    }

    private object? PieceLastDim(IOperation array, int depth)
    {
        if (OperationFacts.Variable(array) is not null)
        {
            return Through(array, depth, (value, d) => PieceLastDim(OperationFacts.Strip(value), d));
        }

        if (array is IInvocationOperation { TargetMethod.Name: "chunk" or "split" } pieces && pieces.Instance is { } whole && _symbols.IsTensor(whole.Type))
        {
            return TouchesLastArgument(pieces, "dim", Rank(whole, depth + 1)) ? null : LastDim(whole, depth + 1);
        }

        return null;
    }

    private static bool TouchesLastArgument(IInvocationOperation invocation, string parameter, int? rank)
    {
        var argument = OperationFacts.Argument(invocation, parameter);
        if (argument is null)
        {
            // The default dim of chunk/split is 0, which is the last one only for 1-D tensors.
            return rank is null or 1;
        }

        return TouchesLast(argument.Value, rank);
    }

    // True unless the dim is provably not the last one.
    private static bool TouchesLast(IOperation dim, int? rank)
    {
        if (OperationFacts.Integer(dim) is not { } value)
        {
            return true;
        }

        if (value == -1)
        {
            return true;
        }

        if (value < -1)
        {
            return false;
        }

        return rank is null || value == rank.Value - 1;
    }

    private static bool KeepsLastDim(IPropertyReferenceOperation indexer, int? rank)
    {
        var indices = new List<Index>();
        foreach (var index in Indices(indexer))
        {
            indices.Add(Classify(index));
        }

        // Indices before an ellipsis, or fewer indices than dims, leave the last dim alone; a full
        // range on the last dim keeps it too.
        if (indices.Contains(Index.Unknown))
        {
            return false;
        }

        var ellipsis = indices.IndexOf(Index.Ellipsis);
        var tail = ellipsis >= 0 ? indices.GetRange(ellipsis + 1, indices.Count - ellipsis - 1) : indices;
        if (ellipsis >= 0)
        {
            return tail.Count == 0 || tail[tail.Count - 1] == Index.Range && IsFullRange(indexer, indices.Count - 1);
        }

        var consumed = 0;
        foreach (var index in indices)
        {
            if (index is Index.Range or Index.Integer)
            {
                consumed++;
            }
        }

        if (rank is { } r && consumed < r)
        {
            return true;
        }

        return rank is not null && indices[indices.Count - 1] == Index.Range && IsFullRange(indexer, indices.Count - 1);
    }

    private static bool IsFullRange(IPropertyReferenceOperation indexer, int position)
    {
        var i = 0;
        foreach (var index in Indices(indexer))
        {
            if (i++ == position)
            {
                var value = index;
                while (value is IConversionOperation conversion)
                {
                    value = conversion.Operand;
                }

                return value is IRangeOperation { LeftOperand: null, RightOperand: null }
                    || OperationFacts.Referenced(value)?.Name == "Colon";
            }
        }

        return false;
    }

    private static ISymbol? DimSymbol(IOperation dim)
    {
        var value = OperationFacts.Strip(dim);
        return value switch
        {
            ILocalReferenceOperation local => local.Local,
            IParameterReferenceOperation parameter => parameter.Parameter,
            IFieldReferenceOperation field => field.Field,
            IPropertyReferenceOperation { Arguments.IsEmpty: true } property => property.Property,
            _ => null,
        };
    }

    // A local or parameter: what its straight-line definition proves (a compound or in-place step keeps the shape).
    private T? Through<T>(IOperation reference, int depth, System.Func<IOperation, int, T?> next)
    {
        if (OperationFacts.Variable(reference) is not { } variable || OperationFacts.Anchor(reference) is not { } anchor)
        {
            return default;
        }

        var reaching = StraightLineDefinitions.Find(variable, anchor, _inPlace);
        if (reaching.Definition is not { } definition || definition.NullChecked is not null)
        {
            return default;
        }

        return definition.Kind switch
        {
            DefinitionKind.Value => next(definition.Operation, depth + 1),
            _ when definition.Target is { } target => next(target, depth + 1),
            _ => default,
        };
    }
}
