using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>Small questions about operations the recogniser asks over and over.</summary>
internal static class OperationFacts
{
    /// <summary>The operation under implicit conversions and parentheses (what the value is, not how it is typed).</summary>
    public static IOperation Strip(IOperation operation)
    {
        while (true)
        {
            switch (operation)
            {
                case IConversionOperation conversion when conversion.IsImplicit || conversion.Conversion.IsNumeric || conversion.Conversion.IsIdentity:
                    operation = conversion.Operand;
                    continue;
                case IParenthesizedOperation parenthesized:
                    operation = parenthesized.Operand;
                    continue;
                default:
                    return operation;
            }
        }
    }

    /// <summary>The local or parameter <paramref name="operation"/> reads, else null.</summary>
    public static ISymbol? Variable(IOperation operation) => Strip(operation) switch
    {
        ILocalReferenceOperation local => local.Local,
        IParameterReferenceOperation parameter => parameter.Parameter,
        _ => null,
    };

    /// <summary>True when <paramref name="operation"/> is a reference to <paramref name="symbol"/> (local, parameter or field).</summary>
    public static bool IsReferenceTo(IOperation? operation, ISymbol symbol) => operation is not null && Referenced(Strip(operation)) is { } referenced
        && SymbolEqualityComparer.Default.Equals(referenced, symbol);

    /// <summary>The local, parameter, field or property a reference operation names, else null.</summary>
    public static ISymbol? Referenced(IOperation operation) => operation switch
    {
        ILocalReferenceOperation local => local.Local,
        IParameterReferenceOperation parameter => parameter.Parameter,
        IFieldReferenceOperation field => field.Field,
        IPropertyReferenceOperation { Arguments.IsEmpty: true } property => property.Property,
        _ => null,
    };

    /// <summary>The compile-time numeric value of <paramref name="operation"/>, if it has one.</summary>
    public static double? Constant(IOperation? operation)
    {
        if (operation is null || !operation.ConstantValue.HasValue)
        {
            return null;
        }

        return operation.ConstantValue.Value switch
        {
            double d => d,
            float f => f,
            int i => i,
            long l => l,
            short s => s,
            sbyte b => b,
            byte b => b,
            uint u => u,
            ulong u => u,
            decimal m => (double)m,
            _ => null,
        };
    }

    /// <summary>The compile-time integer value of <paramref name="operation"/>, if it has one.</summary>
    public static long? Integer(IOperation? operation) => Constant(operation) is { } value && Math.Abs(value - Math.Round(value)) == 0 ? (long)value : null;

    /// <summary>The argument bound to the parameter named <paramref name="name"/>; null when it is not passed.</summary>
    public static IArgumentOperation? Argument(IInvocationOperation invocation, string name)
    {
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Parameter?.Name == name && argument.ArgumentKind != ArgumentKind.DefaultValue)
            {
                return argument;
            }
        }

        return null;
    }

    /// <summary>The argument bound to the parameter at <paramref name="ordinal"/> (defaults included).</summary>
    public static IArgumentOperation? ArgumentAt(IInvocationOperation invocation, int ordinal)
    {
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Parameter?.Ordinal == ordinal)
            {
                return argument;
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="reference"/> sits where it is written (assigned, incremented, passed by ref/out, deconstructed into).</summary>
    public static bool IsWrite(IOperation reference)
    {
        var child = reference;
        var parent = reference.Parent;
        while (parent is ITupleOperation or IConversionOperation { IsImplicit: true })
        {
            child = parent;
            parent = parent.Parent;
        }

        return parent switch
        {
            IAssignmentOperation assignment => assignment.Target == child,
            IIncrementOrDecrementOperation => true,
            IArgumentOperation argument => argument.Parameter?.RefKind is RefKind.Ref or RefKind.Out,
            IDeclarationExpressionOperation => true,
            _ => false,
        };
    }

    /// <summary>True when anything under <paramref name="root"/> writes <paramref name="symbol"/> (a local, parameter or field).</summary>
    public static bool WritesTo(IOperation root, ISymbol symbol) => MemberIndex.For(root).WritesWithin(root, symbol);

    /// <summary>The statement holding <paramref name="operation"/>: its ancestor (or itself) whose parent is a block.</summary>
    public static IOperation? Anchor(IOperation operation)
    {
        for (var current = operation; current is not null; current = current.Parent)
        {
            if (current.Parent is IBlockOperation)
            {
                return current;
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="inner"/> is <paramref name="outer"/> or lies under it.</summary>
    public static bool IsWithin(IOperation inner, IOperation outer)
    {
        for (var current = inner; current is not null; current = current.Parent)
        {
            if (current == outer)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The innermost lambda or local function holding <paramref name="operation"/>, or the member body's root.</summary>
    public static IOperation Function(IOperation operation)
    {
        var current = operation;
        while (current.Parent is { } parent)
        {
            if (parent is IAnonymousFunctionOperation or ILocalFunctionOperation)
            {
                return parent;
            }

            current = parent;
        }

        return current;
    }

    /// <summary>The outermost operation of the tree holding <paramref name="operation"/> (the member body).</summary>
    public static IOperation Root(IOperation operation)
    {
        var current = operation;
        while (current.Parent is { } parent)
        {
            current = parent;
        }

        return current;
    }

    /// <summary>
    /// The value an <c>if</c> condition tests for non-null (<c>x is not null</c>, <c>x is { }</c>,
    /// <c>!(x is null)</c>, <c>x is Tensor</c>, a reference comparison <c>x != null</c>), else null.
    /// </summary>
    public static IOperation? NonNullTested(IOperation condition)
    {
        condition = Strip(condition);
        switch (condition)
        {
            case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation constant } } pattern when IsNull(constant.Value):
                return pattern.Value;
            case IIsPatternOperation { Pattern: IRecursivePatternOperation { DeclaredSymbol: null, DeconstructionSubpatterns.IsEmpty: true, PropertySubpatterns.IsEmpty: true } } recursive:
                return recursive.Value;
            case IIsPatternOperation { Pattern: ITypePatternOperation } typePattern:
                return typePattern.Value;
            case IIsTypeOperation isType:
                return isType.ValueOperand;
            case IUnaryOperation { OperatorKind: UnaryOperatorKind.Not, OperatorMethod: null } not
                when Strip(not.Operand) is IIsPatternOperation { Pattern: IConstantPatternOperation inner } isNull && IsNull(inner.Value):
                return isNull.Value;
            case IBinaryOperation { OperatorKind: BinaryOperatorKind.NotEquals, OperatorMethod: null } notEquals:
                if (IsNull(notEquals.RightOperand))
                {
                    return Strip(notEquals.LeftOperand);
                }

                if (IsNull(notEquals.LeftOperand))
                {
                    return Strip(notEquals.RightOperand);
                }

                return null;
            default:
                return null;
        }
    }

    private static bool IsNull(IOperation operation) =>
        operation.ConstantValue is { HasValue: true, Value: null } || Strip(operation).ConstantValue is { HasValue: true, Value: null };
}
