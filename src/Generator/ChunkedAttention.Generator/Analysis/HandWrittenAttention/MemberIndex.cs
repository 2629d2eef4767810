using System.Collections.Concurrent;
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

    // Keyed by identity: an operation tree hands out one symbol instance per local and parameter,
    // and hashing by identity is what keeps indexing cheap.
    private readonly Dictionary<ISymbol, List<MemberReference>> _references = new(IdentityComparer.Instance);

    private readonly ConcurrentDictionary<(ISymbol Variable, IOperation Anchor), ReachingDefinition> _definitions = new(DefinitionKeyComparer.Instance);

    // Every symbol written anywhere in the member, fields and properties included.
    private readonly HashSet<ISymbol> _written = new(SymbolEqualityComparer.Default);

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

            if (OperationFacts.Referenced(operation) is { } written && OperationFacts.IsWrite(operation))
            {
                _written.Add(written);
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

    /// <summary>The reaching definition of <paramref name="variable"/> at <paramref name="anchor"/>, computed once per member.</summary>
    public ReachingDefinition Definition(ISymbol variable, IOperation anchor, System.Func<ReachingDefinition> compute)
    {
        if (_definitions.TryGetValue((variable, anchor), out var known))
        {
            return known;
        }

        var found = compute();
        _definitions.TryAdd((variable, anchor), found);
        return found;
    }

    private sealed class DefinitionKeyComparer : IEqualityComparer<(ISymbol Variable, IOperation Anchor)>
    {
        public static readonly DefinitionKeyComparer Instance = new();

        public bool Equals((ISymbol Variable, IOperation Anchor) x, (ISymbol Variable, IOperation Anchor) y) =>
            ReferenceEquals(x.Anchor, y.Anchor) && IdentityComparer.Instance.Equals(x.Variable, y.Variable);

        public int GetHashCode((ISymbol Variable, IOperation Anchor) key) =>
            System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(key.Anchor) ^ IdentityComparer.Instance.GetHashCode(key.Variable);
    }

    private sealed class IdentityComparer : IEqualityComparer<ISymbol>
    {
        public static readonly IdentityComparer Instance = new();

        public bool Equals(ISymbol? x, ISymbol? y) => ReferenceEquals(x, y) || (x is not null && SymbolEqualityComparer.Default.Equals(x, y));

        public int GetHashCode(ISymbol obj) => obj.MetadataName.GetHashCode() ^ obj.Kind.GetHashCode();
    }

    /// <summary>True when <paramref name="symbol"/> is written anywhere in the member (its declaration aside).</summary>
    public bool IsWritten(ISymbol symbol) => _written.Contains(symbol);

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
