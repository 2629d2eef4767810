using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>One reference to a local or parameter in a member body.</summary>
/// <param name="Operation">The reference operation.</param>
/// <param name="Position">Where it starts in the source.</param>
/// <param name="IsWrite">True where it is assigned, incremented, passed by ref/out or deconstructed into.</param>
/// <param name="IsDeclaration">True for the declarator of a local (not a reference; counted as neither read nor write).</param>
internal readonly record struct MemberReference(IOperation Operation, int Position, bool IsWrite, bool IsDeclaration = false);

/// <summary>
/// Every reference to a local or parameter, and every statement, of one member body, indexed once:
/// the recogniser asks "is x written inside this statement?" and "who else reads x?" many times per
/// chain, and each answer would otherwise walk the body again. Built on first use per operation tree
/// and kept while the tree lives. Fields and properties are not indexed (rarely asked about; the
/// answer then walks the operation).
/// </summary>
internal sealed class MemberIndex
{
    private static readonly ConditionalWeakTable<IOperation, MemberIndex> Cache = new();

    private static readonly IReadOnlyList<MemberReference> None = new List<MemberReference>();

    private readonly Dictionary<ISymbol, List<MemberReference>> _references = new(SymbolEqualityComparer.Default);

    private readonly IOperation _root;

    private MemberIndex(IOperation root)
    {
        _root = root;
        var statements = new List<IOperation>();
        foreach (var operation in root.DescendantsAndSelf())
        {
            if (operation.Parent is IBlockOperation)
            {
                statements.Add(operation);
            }

            switch (operation)
            {
                case ILocalReferenceOperation local:
                    Add(local.Local, new MemberReference(operation, operation.Syntax.SpanStart, OperationFacts.IsWrite(operation)));
                    break;
                case IParameterReferenceOperation parameter:
                    Add(parameter.Parameter, new MemberReference(operation, operation.Syntax.SpanStart, OperationFacts.IsWrite(operation)));
                    break;
                case IVariableDeclaratorOperation declarator:
                    Add(declarator.Symbol, new MemberReference(operation, operation.Syntax.SpanStart, IsWrite: false, IsDeclaration: true));
                    break;
            }
        }

        statements.Sort((a, b) => a.Syntax.SpanStart.CompareTo(b.Syntax.SpanStart));
        Statements = statements;
        foreach (var list in _references.Values)
        {
            list.Sort((a, b) => a.Position.CompareTo(b.Position));
        }
    }

    private void Add(ISymbol symbol, MemberReference reference)
    {
        if (!_references.TryGetValue(symbol, out var list))
        {
            list = new List<MemberReference>();
            _references.Add(symbol, list);
        }

        list.Add(reference);
    }

    /// <summary>Every statement (an operation whose parent is a block), at any depth, in source order.</summary>
    public IReadOnlyList<IOperation> Statements { get; }

    /// <summary>The index of the member body holding <paramref name="operation"/>.</summary>
    public static MemberIndex For(IOperation operation) => Cache.GetValue(OperationFacts.Root(operation), static root => new MemberIndex(root));

    /// <summary>Every reference to the local or parameter <paramref name="symbol"/> in source order.</summary>
    public IReadOnlyList<MemberReference> References(ISymbol symbol) =>
        _references.TryGetValue(symbol, out var list) ? list : None;

    private static bool IsIndexed(ISymbol symbol) => symbol is ILocalSymbol or IParameterSymbol;

    /// <summary>True when <paramref name="symbol"/> is written anywhere in the member (its declaration aside).</summary>
    public bool IsWritten(ISymbol symbol)
    {
        if (!IsIndexed(symbol))
        {
            return _root.DescendantsAndSelf().Any(o => OperationFacts.IsReferenceTo(o, symbol) && OperationFacts.IsWrite(o));
        }

        foreach (var reference in References(symbol))
        {
            if (reference.IsWrite)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="operation"/> declares or references <paramref name="symbol"/>: the
    /// statements a search for its value must look at (a read may be an in-place step's receiver).
    /// </summary>
    public bool Touches(IOperation operation, ISymbol symbol)
    {
        if (!IsIndexed(symbol))
        {
            return true;
        }

        var span = operation.Syntax.Span;
        var references = References(symbol);
        for (var i = FirstAtOrAfter(references, span.Start); i < references.Count && references[i].Position < span.End; i++)
        {
            if (IsInside(references[i].Operation, operation, span))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when <paramref name="symbol"/> is written inside <paramref name="operation"/> (by its source span).</summary>
    public bool WritesWithin(IOperation operation, ISymbol symbol)
    {
        if (!IsIndexed(symbol))
        {
            return operation.DescendantsAndSelf().Any(o => OperationFacts.IsReferenceTo(o, symbol) && OperationFacts.IsWrite(o));
        }

        var span = operation.Syntax.Span;
        var references = References(symbol);
        for (var i = FirstAtOrAfter(references, span.Start); i < references.Count && references[i].Position < span.End; i++)
        {
            if (references[i].IsWrite && IsInside(references[i].Operation, operation, span))
            {
                return true;
            }
        }

        return false;
    }

    // Spans nest for everything under an operation; an implicit operation may share its parent's
    // syntax, so containment is confirmed through the tree when the spans alone cannot tell.
    private static bool IsInside(IOperation reference, IOperation operation, TextSpan span) =>
        span.Contains(reference.Syntax.Span) && (reference.Syntax.Span != span || OperationFacts.IsWithin(reference, operation));

    private static int FirstAtOrAfter(IReadOnlyList<MemberReference> references, int position)
    {
        int low = 0, high = references.Count;
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (references[middle].Position < position)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }
}
