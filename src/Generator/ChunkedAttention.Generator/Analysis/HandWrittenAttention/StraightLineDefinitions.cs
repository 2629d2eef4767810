using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>How a statement gives a local its value.</summary>
internal enum DefinitionKind
{
    /// <summary><c>var x = e;</c> or <c>x = e;</c>: the value is <see cref="Definition.Operation"/>.</summary>
    Value,

    /// <summary><c>x op= e;</c>: a step applied to the previous value.</summary>
    Compound,

    /// <summary><c>x.op_(...);</c>: an in-place TorchSharp step applied to the previous value.</summary>
    InPlace,
}

/// <summary>
/// The statement that last gave a local or parameter its value before some point, in straight-line
/// code. For <see cref="DefinitionKind.Compound"/> and <see cref="DefinitionKind.InPlace"/> the
/// previous value is read through <see cref="Target"/>, from before <see cref="Statement"/>.
/// </summary>
internal sealed class Definition
{
    public Definition(DefinitionKind kind, IOperation statement, IOperation operation, IOperation? target, bool isDeclaration, bool isSoleDeclarator)
    {
        Kind = kind;
        Statement = statement;
        Operation = operation;
        Target = target;
        IsDeclaration = isDeclaration;
        IsSoleDeclarator = isSoleDeclarator;
    }

    public DefinitionKind Kind { get; }

    /// <summary>The statement in its block (for the null-checked form, the <c>if</c> statement).</summary>
    public IOperation Statement { get; }

    /// <summary>The assigned value (<see cref="DefinitionKind.Value"/>), the compound assignment, or the in-place invocation.</summary>
    public IOperation Operation { get; }

    /// <summary>The reference to the local in the definition (assignment target, in-place receiver); null for a declaration.</summary>
    public IOperation? Target { get; }

    /// <summary>True for a declaration with an initializer.</summary>
    public bool IsDeclaration { get; }

    /// <summary>False when the declaration declares other locals too (it cannot be removed alone).</summary>
    public bool IsSoleDeclarator { get; }

    /// <summary>The value tested against null around the definition (<c>if (mask is not null) x = x + mask;</c>), else null.</summary>
    public IOperation? NullChecked { get; private set; }

    public Definition WithNullCheck(IOperation statement, IOperation nullChecked) =>
        new(Kind, statement, Operation, Target, IsDeclaration, IsSoleDeclarator) { NullChecked = nullChecked };
}

/// <summary>The outcome of a search for a definition.</summary>
internal readonly struct ReachingDefinition
{
    private ReachingDefinition(Definition? definition, bool broken)
    {
        Definition = definition;
        IsBroken = broken;
    }

    /// <summary>The definition, when one straight-line statement provides the value.</summary>
    public Definition? Definition { get; }

    /// <summary>True when the value comes through a loop, a branch, a ref/out argument or similar.</summary>
    public bool IsBroken { get; }

    public static ReachingDefinition None => default;

    public static ReachingDefinition Broken => new(null, true);

    public static ReachingDefinition Of(Definition definition) => new(definition, false);
}

/// <summary>
/// Reaching definitions in straight-line code: searching backwards from a statement through its
/// block, and out of plain blocks and <c>using</c> bodies, for the statement that last assigned a
/// local. An <c>if (x is not null)</c> around a single assignment is recognised (the mask form).
/// Any other write on the way (in a loop, a branch, by ref) makes the value not straight-line.
/// </summary>
internal static class StraightLineDefinitions
{
    /// <summary>The definition of <paramref name="variable"/> reaching the start of <paramref name="anchor"/> (a statement in a block).</summary>
    public static ReachingDefinition Find(ISymbol variable, IOperation anchor, InPlaceSteps inPlace)
    {
        var members = MemberIndex.For(anchor);
        return members.Definition(variable, anchor, () => Search(members, variable, anchor, inPlace));
    }

    private static ReachingDefinition Search(MemberIndex members, ISymbol variable, IOperation anchor, InPlaceSteps inPlace)
    {
        var current = anchor;
        while (current.Parent is IBlockOperation block)
        {
            var index = IndexOf(block, current);
            for (var i = index - 1; i >= 0; i--)
            {
                var statement = block.Operations[i];
                if (!members.Touches(statement, variable))
                {
                    continue;
                }

                var found = Classify(statement, variable, inPlace, out var definition);
                if (found == Write.Definition)
                {
                    return ReachingDefinition.Of(definition!);
                }

                if (found == Write.Other)
                {
                    return ReachingDefinition.Broken;
                }

                if (found == Write.DeclaredWithoutValue)
                {
                    return ReachingDefinition.None;
                }
            }

            // Out of a plain nested block or a using body: still straight-line.
            switch (block.Parent)
            {
                case IBlockOperation:
                    current = block;
                    continue;
                case IUsingOperation @using when @using.Body == block && @using.Parent is IBlockOperation:
                    current = @using;
                    continue;
            }

            // Out of a branch: a local that is never reassigned has its declaration's value
            // everywhere, so its declaration further out still counts. Never out of a loop or a
            // function: the value could come from an earlier iteration or a later call.
            if (IsAssignedInside(variable, block))
            {
                return ReachingDefinition.Broken;
            }

            var outer = EnclosingStatementOutsideBranches(block);
            if (outer is null)
            {
                return ReachingDefinition.None;
            }

            current = outer;
        }

        return ReachingDefinition.None;
    }

    private static IOperation? EnclosingStatementOutsideBranches(IOperation block)
    {
        for (var current = block.Parent; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case ILoopOperation or IAnonymousFunctionOperation or ILocalFunctionOperation or ITryOperation or ILockOperation:
                    return null;
                case IConditionalOperation or ISwitchOperation or ISwitchCaseOperation or IBlockOperation or IUsingOperation:
                    if (current.Parent is IBlockOperation)
                    {
                        return current;
                    }

                    continue;
                default:
                    return null;
            }
        }

        return null;
    }

    private static bool IsAssignedInside(ISymbol variable, IOperation block) => MemberIndex.For(block).IsWritten(variable);

    private static int IndexOf(IBlockOperation block, IOperation statement)
    {
        for (var i = 0; i < block.Operations.Length; i++)
        {
            if (block.Operations[i] == statement)
            {
                return i;
            }
        }

        return -1;
    }

    private enum Write
    {
        None,
        Definition,
        DeclaredWithoutValue,
        Other,
    }

    private static Write Classify(IOperation statement, ISymbol variable, InPlaceSteps inPlace, out Definition? definition)
    {
        definition = null;
        switch (statement)
        {
            case IVariableDeclarationGroupOperation group:
                return ClassifyDeclaration(group, statement, variable, out definition);
            case IUsingDeclarationOperation usingDeclaration:
                return ClassifyDeclaration(usingDeclaration.DeclarationGroup, statement, variable, out definition);
            case IExpressionStatementOperation expression:
                var assignment = ClassifyAssignment(expression.Operation, statement, variable, inPlace);
                if (assignment is not null)
                {
                    definition = assignment;
                    return Write.Definition;
                }

                return OperationFacts.WritesTo(statement, variable) ? Write.Other : Write.None;
            case IConditionalOperation { WhenFalse: null } conditional when OperationFacts.WritesTo(conditional, variable):
                if (OperationFacts.NonNullTested(conditional.Condition) is { } tested
                    && SingleStatement(conditional.WhenTrue) is IExpressionStatementOperation inner
                    && !OperationFacts.WritesTo(conditional.Condition, variable)
                    && ClassifyAssignment(inner.Operation, statement, variable, inPlace) is { } guarded)
                {
                    definition = guarded.WithNullCheck(statement, tested);
                    return Write.Definition;
                }

                return Write.Other;
            default:
                return OperationFacts.WritesTo(statement, variable) ? Write.Other : Write.None;
        }
    }

    private static Write ClassifyDeclaration(IVariableDeclarationGroupOperation group, IOperation statement, ISymbol variable, out Definition? definition)
    {
        definition = null;
        var declarators = 0;
        foreach (var declaration in group.Declarations)
        {
            declarators += declaration.Declarators.Length;
        }

        foreach (var declaration in group.Declarations)
        {
            foreach (var declarator in declaration.Declarators)
            {
                if (!SymbolEqualityComparer.Default.Equals(declarator.Symbol, variable))
                {
                    continue;
                }

                var initializer = declarator.Initializer?.Value ?? declaration.Initializer?.Value;
                if (initializer is null)
                {
                    return Write.DeclaredWithoutValue;
                }

                definition = new Definition(DefinitionKind.Value, statement, initializer, target: null, isDeclaration: true, isSoleDeclarator: declarators == 1);
                return Write.Definition;
            }
        }

        return OperationFacts.WritesTo(group, variable) ? Write.Other : Write.None;
    }

    private static Definition? ClassifyAssignment(IOperation operation, IOperation statement, ISymbol variable, InPlaceSteps inPlace)
    {
        switch (operation)
        {
            case ISimpleAssignmentOperation { IsRef: false } simple
                when OperationFacts.IsReferenceTo(simple.Target, variable) && !OperationFacts.WritesTo(simple.Value, variable):
                return new Definition(DefinitionKind.Value, statement, simple.Value, simple.Target, isDeclaration: false, isSoleDeclarator: true);
            case ICompoundAssignmentOperation compound
                when OperationFacts.IsReferenceTo(compound.Target, variable) && !OperationFacts.WritesTo(compound.Value, variable):
                return new Definition(DefinitionKind.Compound, statement, compound, compound.Target, isDeclaration: false, isSoleDeclarator: true);
            case IInvocationOperation invocation
                when invocation.Instance is { } instance
                    && OperationFacts.IsReferenceTo(instance, variable)
                    && inPlace(invocation.TargetMethod)
                    && !invocation.Arguments.Any(a => OperationFacts.WritesTo(a, variable)):
                return new Definition(DefinitionKind.InPlace, statement, invocation, instance, isDeclaration: false, isSoleDeclarator: true);
            default:
                return null;
        }
    }

    private static IOperation? SingleStatement(IOperation operation) => operation switch
    {
        IBlockOperation { Operations.Length: 1 } block => block.Operations[0],
        IBlockOperation => null,
        _ => operation,
    };
}

/// <summary>Decides whether a method is one of the in-place tensor steps a chain may contain (<c>masked_fill_</c>, <c>add_</c>...).</summary>
internal delegate bool InPlaceSteps(IMethodSymbol method);
