using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>The recogniser's safety checks: nothing else reads the chain's locals, moved values keep their values and effects their order, and what else the fix removes.</summary>
internal sealed partial class AttentionChainRecognizer
{
    private sealed partial class Run
    {
        // ---- Safety of the rewrite ----

        // Where the wrapper can go (a class or struct, the runtime referenced, ...) is the wrapper rulebook's
        // decision (WrapperHostRules), made by the analyzer before it asks; here only whether the call can say it all.
        private void CheckWrapper(AttentionMask? mask, AttentionDropout? dropout, bool needsScale)
        {
            var wrapper = _owner._wrapper;
            if (wrapper is null || (mask is not null && wrapper.Mask is null) || (dropout is not null && wrapper.Dropout is null) || (needsScale && wrapper.Scale is null))
            {
                throw Decline(DeclineReason.WrapperLacksParameter);
            }
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

                    if (!inNestedFunction && position > firstDefinition && DisposeStatement(reference) is { } disposal)
                    {
                        _consumedStatements.Add(disposal); // 'scores.Dispose();' goes with the scores
                        continue;
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

        // 'x.Dispose();' on its own line.
        private static IOperation? DisposeStatement(IOperation reference) =>
            reference.Parent is IInvocationOperation { TargetMethod.Name: "Dispose", Arguments.Length: 0 } dispose
                && dispose.Instance == reference
                && dispose.Parent is IExpressionStatementOperation { Parent: IBlockOperation } statement
                ? statement
                : null;

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

            foreach (var statement in _consumedStatements)
            {
                if (statement.Syntax.ContainsDirectives)
                {
                    throw Decline(DeclineReason.PreprocessorDirective);
                }
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
