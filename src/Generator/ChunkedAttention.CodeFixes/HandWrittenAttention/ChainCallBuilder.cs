using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using ChunkedAttention.Generator;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.CodeFixes.HandWrittenAttention;

/// <summary>
/// Writes the one <c>ChunkedScaledDotProductAttention(q, k, v, attn_mask: ..., p: ..., scale: ...)</c>
/// call that replaces a recognised chain. The values the call reads are the chain's own expressions,
/// copied as written (comments inside them included); only the glue around them is new.
/// </summary>
internal sealed class ChainCallBuilder
{
    private readonly StringBuilder _text = new();
    private readonly List<ExpressionSyntax> _holes = new();

    private ChainCallBuilder()
    {
    }

    /// <summary>The call for <paramref name="chain"/>, or null when a value is not an expression that can be copied.</summary>
    public static ExpressionSyntax? Build(AttentionChain chain, WrapperArguments wrapper)
    {
        var builder = new ChainCallBuilder();
        return builder.Write(chain, wrapper) ? builder.Parse() : null;
    }

    private bool Write(AttentionChain chain, WrapperArguments wrapper)
    {
        _text.Append(WellKnownNames.GeneratedMethodName).Append('(');
        if (!Hole(chain.Query, primary: false) || !Append(", ") || !Hole(chain.Key, primary: false) || !Append(", ") || !Hole(chain.Value, primary: false))
        {
            return false;
        }

        if (chain.Mask is { } mask)
        {
            _text.Append(", ").Append(wrapper.Mask).Append(": ");
            if (!WriteMask(chain, mask))
            {
                return false;
            }
        }

        if (chain.Dropout is { } dropout)
        {
            _text.Append(", ").Append(wrapper.Dropout).Append(": ");
            if (!WriteDropout(dropout))
            {
                return false;
            }
        }

        if (!chain.ScaleIsDefault)
        {
            _text.Append(", ").Append(wrapper.Scale).Append(": ");
            if (!WriteScale(chain.Scale))
            {
                return false;
            }
        }

        _text.Append(')');
        return true;
    }

    private bool WriteMask(AttentionChain chain, AttentionMask mask)
    {
        switch (mask.Kind)
        {
            case AttentionMaskKind.Additive:
                return mask.NullChecked is null ? Hole(mask.Operand, primary: false) : NullConditional(mask.Operand, mask.NullChecked, suffix: null);
            case AttentionMaskKind.Boolean:
                return WriteComplement(mask.Operand, mask.NullChecked);
            case AttentionMaskKind.FiniteFill:
                // f where the condition holds, 0 elsewhere, in the query's dtype: adding it to the scores
                // leaves the kept ones unchanged and takes the filled ones as far down as the fill did.
                var dtype = AttentionChainRecognizer.DtypeSource(chain.Query, chain.Key, chain.Value);
                return dtype is not null
                    && Hole(mask.Operand, primary: true) && Append(".to(") && Hole(dtype, primary: true) && Append(".dtype) * ")
                    && Hole(mask.Fill!, primary: true, allowUnary: true);
            default:
                return false;
        }
    }

    // The boolean mask SDPA wants is the complement of masked_fill's condition (true = may attend).
    private bool WriteComplement(IOperation condition, IOperation? tested)
    {
        var stripped = OperationFacts.Strip(condition);
        switch (stripped)
        {
            // x.logical_not(), torch.logical_not(x), ~x: the complement is x itself.
            case IInvocationOperation { TargetMethod.Name: "logical_not" } not when not.Instance is { } operand:
                return tested is null ? Hole(operand, primary: false) : NullConditional(operand, tested, suffix: null);
            case IInvocationOperation { TargetMethod.Name: "logical_not", Arguments.Length: 1 } notCall when notCall.Instance is null:
                return tested is null ? Hole(notCall.Arguments[0].Value, primary: false) : NullConditional(notCall.Arguments[0].Value, tested, suffix: null);
            case IUnaryOperation { OperatorMethod.Name: "op_OnesComplement" } complement:
                return tested is null ? Hole(complement.Operand, primary: false) : NullConditional(complement.Operand, tested, suffix: null);

            // a == b and a != b (and eq/ne) are exact complements, NaN included.
            case IBinaryOperation { OperatorMethod.Name: "op_Equality" or "op_Inequality" } comparison:
                var negated = comparison.OperatorMethod!.Name == "op_Equality" ? "ne" : "eq";
                if (tested is not null)
                {
                    return NullConditional(comparison.LeftOperand, tested, suffix: null, method: negated, argument: comparison.RightOperand);
                }

                return Hole(comparison.LeftOperand, primary: false, binaryOperand: true)
                    && Append(negated == "ne" ? " != " : " == ")
                    && Hole(comparison.RightOperand, primary: false, binaryOperand: true);
            case IInvocationOperation { TargetMethod.Name: "eq" or "ne", Arguments.Length: 1 } method when method.Instance is { } receiver:
                var flipped = method.TargetMethod.Name == "eq" ? "ne" : "eq";
                if (tested is not null)
                {
                    return NullConditional(receiver, tested, suffix: null, method: flipped, argument: method.Arguments[0].Value);
                }

                return Hole(receiver, primary: true) && Append("." + flipped + "(") && Hole(method.Arguments[0].Value, primary: false) && Append(")");
            default:
                return tested is null
                    ? Hole(condition, primary: true) && Append(".logical_not()")
                    : NullConditional(condition, tested, suffix: ".logical_not()");
        }
    }

    private bool WriteDropout(AttentionDropout dropout)
    {
        if (dropout.Kind == AttentionDropoutKind.Module)
        {
            return Hole(dropout.Module!, primary: true) && Append(".training ? ") && Hole(dropout.Module!, primary: true) && Append(".p : 0.0");
        }

        if (dropout.Training is { } training)
        {
            if (!Hole(training, primary: true, allowUnary: true) || !Append(" ? "))
            {
                return false;
            }

            if (!(dropout.Probability is { } p ? Hole(p, primary: true, allowUnary: true) : Append("0.5")))
            {
                return false;
            }

            return Append(" : 0.0");
        }

        return dropout.Probability is { } probability ? Hole(probability, primary: false) : Append("0.5");
    }

    private bool WriteScale(System.Collections.Immutable.ImmutableArray<ScaleFactor> factors)
    {
        if (factors.IsEmpty)
        {
            return Append("1.0"); // q·kᵀ unscaled: SDPA's default would divide by sqrt(E)
        }

        var first = true;
        foreach (var factor in factors)
        {
            if (first)
            {
                if (factor.Divides)
                {
                    _text.Append("1.0 / ");
                    if (!Hole(factor.Value, primary: true, allowUnary: false))
                    {
                        return false;
                    }
                }
                else if (!Hole(factor.Value, primary: factors.Length > 1, allowUnary: true))
                {
                    return false;
                }

                first = false;
                continue;
            }

            _text.Append(factor.Divides ? " / " : " * ");
            if (!Hole(factor.Value, primary: true, allowUnary: false))
            {
                return false;
            }
        }

        return true;
    }

    // Under 'if (m is not null)', m?.x(): null when m is null, as the skipped step left the scores.
    private bool NullConditional(IOperation operand, IOperation tested, string? suffix, string? method = null, IOperation? argument = null)
    {
        if (operand.Syntax is not ExpressionSyntax expression
            || OperationFacts.Referenced(OperationFacts.Strip(tested)) is not { } testedSymbol)
        {
            return false;
        }

        // The root of the call chain is the tested value (the recogniser checked it).
        var root = OperationFacts.Strip(operand);
        while (!OperationFacts.IsReferenceTo(root, testedSymbol))
        {
            if (root is IInvocationOperation { Instance: { } receiver })
            {
                root = OperationFacts.Strip(receiver);
                continue;
            }

            return false;
        }

        var text = expression.WithoutTrivia().ToFullString();
        var offset = root.Syntax.Span.End - expression.Span.Start;
        var isRootItself = root.Syntax.Span == expression.Span;
        if (method is not null)
        {
            if (argument?.Syntax is not ExpressionSyntax argumentSyntax)
            {
                return false;
            }

            var call = "." + method + "(" + argumentSyntax.WithoutTrivia().ToFullString() + ")";
            text = isRootItself ? text + "?" + call : text.Insert(offset, "?") + call;
        }
        else if (suffix is not null)
        {
            text = isRootItself ? text + "?" + suffix : text.Insert(offset, "?") + suffix;
        }
        else if (!isRootItself)
        {
            text = text.Insert(offset, "?");
        }

        return Hole(SyntaxFactory.ParseExpression(text), primary: false);
    }

    private bool Append(string text)
    {
        _text.Append(text);
        return true;
    }

    private bool Hole(IOperation operation, bool primary, bool allowUnary = false, bool binaryOperand = false) =>
        operation.Syntax is ExpressionSyntax expression && Hole(expression, primary, allowUnary, binaryOperand);

    private bool Hole(ExpressionSyntax expression, bool primary, bool allowUnary = false, bool binaryOperand = false)
    {
        var name = "__chunkedAttentionHole" + _holes.Count.ToString(CultureInfo.InvariantCulture);
        var parenthesize = (primary && !IsPrimary(expression) && !(allowUnary && expression is PrefixUnaryExpressionSyntax))
            || (binaryOperand && !IsPrimary(expression) && expression is not PrefixUnaryExpressionSyntax);
        _holes.Add(expression);
        _text.Append(parenthesize ? "(" + name + ")" : name);
        return true;
    }

    private static bool IsPrimary(ExpressionSyntax expression) => expression is IdentifierNameSyntax or GenericNameSyntax or QualifiedNameSyntax
        or MemberAccessExpressionSyntax or InvocationExpressionSyntax or ElementAccessExpressionSyntax or LiteralExpressionSyntax
        or ParenthesizedExpressionSyntax or ThisExpressionSyntax or BaseExpressionSyntax or DefaultExpressionSyntax
        or TypeOfExpressionSyntax or PredefinedTypeSyntax or AliasQualifiedNameSyntax;

    private ExpressionSyntax Parse()
    {
        var parsed = SyntaxFactory.ParseExpression(_text.ToString());
        var holes = new Dictionary<string, ExpressionSyntax>();
        for (var i = 0; i < _holes.Count; i++)
        {
            holes.Add("__chunkedAttentionHole" + i.ToString(CultureInfo.InvariantCulture), _holes[i]);
        }

        return parsed.ReplaceNodes(
            parsed.DescendantNodes().OfType<IdentifierNameSyntax>().Where(n => holes.ContainsKey(n.Identifier.ValueText)),
            (original, _) => holes[original.Identifier.ValueText].WithoutTrivia().WithTriviaFrom(original));
    }
}
