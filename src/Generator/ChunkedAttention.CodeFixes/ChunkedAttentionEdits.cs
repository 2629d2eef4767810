using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// The edits of one ChunkedAttention fix (a single fix or a Fix All), collected across a solution and
/// applied once. Every fix that moves attention code onto the generated wrapper goes through here, so
/// they all touch a file the same way: their own replacements, one <c>[ChunkedAttention]</c> line
/// indented like the type's own line, <c>partial</c> right before the type keyword, and
/// <c>using ChunkedAttention;</c> where Roslyn's import service puts it (see <see cref="ImportPlacement"/>).
/// </summary>
/// <remarks>
/// Everything is applied as plain text changes and nothing is handed to the formatter, so the file's
/// indentation characters, line endings, doc comments and directives stay exactly as they were.
/// Requests are grouped by type symbol: two calls in one type, or a type split over several files, get
/// the attribute once and each declaration gets <c>partial</c> once.
/// </remarks>
internal sealed class ChunkedAttentionEdits
{
    // Inserted fully qualified; ImportPlacement then adds the using directive and shortens the name.
    private const string QualifiedAttributeName = "global::" + WellKnownNames.RuntimeNamespace + "." + WellKnownNames.ChunkedAttentionAttributeShortName;

    private readonly Dictionary<DocumentId, List<TextChange>> _replacements = new();
    private readonly Dictionary<INamedTypeSymbol, TypeRequest> _types = new(SymbolEqualityComparer.Default);
    private readonly List<INamedTypeSymbol> _typeOrder = new();

    /// <summary>Starts an empty set of edits to <paramref name="solution"/>.</summary>
    public ChunkedAttentionEdits(Solution solution)
    {
        Solution = solution;
    }

    /// <summary>The solution the edits apply to; every span and declaration refers to its documents.</summary>
    public Solution Solution { get; }

    /// <summary>True when nothing has been requested.</summary>
    public bool IsEmpty => _replacements.Count == 0 && _types.Count == 0;

    /// <summary>
    /// Replaces <paramref name="span"/> of <paramref name="document"/> with <paramref name="newText"/>, verbatim
    /// (the caller writes the indentation and line endings it needs). The same replacement requested twice
    /// counts once; replacements that overlap otherwise are a bug in the caller and throw in <see cref="ApplyAsync"/>.
    /// </summary>
    public void Replace(DocumentId document, TextSpan span, string newText)
    {
        if (!_replacements.TryGetValue(document, out var list))
        {
            list = new List<TextChange>();
            _replacements.Add(document, list);
        }

        var change = new TextChange(span, newText);
        if (!list.Contains(change))
        {
            list.Add(change);
        }
    }

    /// <summary>
    /// <paramref name="type"/> gets <c>[ChunkedAttention]</c> on <paramref name="declaration"/> (one of its
    /// declarations, in <see cref="Solution"/>) unless some declaration of it already has the attribute or an
    /// earlier request chose another declaration; it and every containing type become partial.
    /// </summary>
    public void AddChunkedAttention(INamedTypeSymbol type, TypeDeclarationSyntax declaration)
    {
        var request = GetRequest(type);
        if (request.AttributeOn is null && Solution.GetDocumentId(declaration.SyntaxTree) is { } documentId)
        {
            request.AttributeOn = (documentId, declaration.Span);
        }
    }

    /// <summary>Every declaration of <paramref name="type"/> and of each type containing it becomes partial.</summary>
    public void MakePartial(INamedTypeSymbol type) => GetRequest(type);

    /// <summary>Applies every requested edit and returns the changed solution.</summary>
    public async Task<Solution> ApplyAsync(CancellationToken cancellationToken)
    {
        var insertions = await PlanTypeEditsAsync(cancellationToken).ConfigureAwait(false);
        var solution = Solution;
        foreach (var documentId in _replacements.Keys.Concat(insertions.Keys).Distinct())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var document = solution.GetDocument(documentId);
            if (document is null)
            {
                continue;
            }

            var text = await document.GetTextAsync(cancellationToken).ConfigureAwait(false);
            var edits = new List<TextChange>(_replacements.TryGetValue(documentId, out var replaced) ? replaced : Enumerable.Empty<TextChange>());
            var typeInsertions = insertions.TryGetValue(documentId, out var inserted) ? inserted : new List<TypeInsertion>();
            var (changes, attributeNames) = Merge(text, edits, typeInsertions);

            document = document.WithText(text.WithChanges(changes));
            if (attributeNames.Count > 0)
            {
                document = await ImportPlacement.AddUsingAndShortenAsync(document, attributeNames, cancellationToken).ConfigureAwait(false);
            }

            solution = document.Project.Solution;
        }

        return solution;
    }

    private TypeRequest GetRequest(INamedTypeSymbol type)
    {
        if (!_types.TryGetValue(type, out var request))
        {
            request = new TypeRequest();
            _types.Add(type, request);
            _typeOrder.Add(type);
        }

        return request;
    }

    // Where 'partial' and the attribute go, per document, from the types' declarations in the original solution.
    private async Task<Dictionary<DocumentId, List<TypeInsertion>>> PlanTypeEditsAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<DocumentId, List<TypeInsertion>>();
        var seen = new HashSet<(DocumentId, int, bool)>();

        void Add(DocumentId documentId, TypeInsertion insertion)
        {
            if (seen.Add((documentId, insertion.FirstTokenStart, insertion.IsAttribute)))
            {
                if (!result.TryGetValue(documentId, out var list))
                {
                    list = new List<TypeInsertion>();
                    result.Add(documentId, list);
                }

                list.Add(insertion);
            }
        }

        foreach (var type in _typeOrder)
        {
            var request = _types[type];
            for (var current = type; current is not null; current = current.ContainingType)
            {
                foreach (var reference in current.DeclaringSyntaxReferences)
                {
                    if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration
                        && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword)
                        && Solution.GetDocumentId(reference.SyntaxTree) is { } documentId)
                    {
                        Add(documentId, TypeInsertion.Partial(declaration));
                    }
                }
            }

            if (request.AttributeOn is not { } target || HasChunkedAttention(type) || Solution.GetDocument(target.Document) is not { } document)
            {
                continue;
            }

            var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
            if (root?.FindNode(target.Span, getInnermostNodeForTie: true).AncestorsAndSelf().OfType<TypeDeclarationSyntax>()
                    .FirstOrDefault(d => d.Span == target.Span) is { } attributed)
            {
                Add(target.Document, TypeInsertion.Attribute(attributed));
            }
        }

        return result;
    }

    private static bool HasChunkedAttention(INamedTypeSymbol type) =>
        type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == WellKnownNames.ChunkedAttentionAttribute);

    // Turns replacements and type insertions into ordered, non-overlapping text changes, and says where
    // each inserted attribute name will be in the new text.
    private static (List<TextChange> Changes, List<TextSpan> AttributeNames) Merge(
        SourceText text,
        List<TextChange> replacements,
        List<TypeInsertion> insertions)
    {
        var pieces = new List<(int Start, int End, int Order, string Text, int NameOffset)>();
        foreach (var replacement in replacements)
        {
            pieces.Add((replacement.Span.Start, replacement.Span.End, 2, replacement.NewText ?? string.Empty, -1));
        }

        foreach (var insertion in insertions)
        {
            if (insertion.IsAttribute)
            {
                var (position, newText, nameOffset) = AttributeLine(text, insertion.FirstTokenStart);
                pieces.Add((position, position, 0, newText, nameOffset));
            }
            else
            {
                pieces.Add((insertion.KeywordStart, insertion.KeywordStart, 1, SyntaxFacts.GetText(SyntaxKind.PartialKeyword) + " ", -1));
            }
        }

        pieces.Sort((a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : a.Order.CompareTo(b.Order));

        var changes = new List<TextChange>();
        var names = new List<TextSpan>();
        var delta = 0;
        var previousEnd = -1;
        foreach (var piece in pieces)
        {
            if (piece.Start < previousEnd)
            {
                throw new InvalidOperationException($"ChunkedAttention fix: overlapping edits at {piece.Start} (previous edit ends at {previousEnd}).");
            }

            if (piece.NameOffset >= 0)
            {
                names.Add(new TextSpan(piece.Start + delta + piece.NameOffset, QualifiedAttributeName.Length));
            }

            changes.Add(new TextChange(TextSpan.FromBounds(piece.Start, piece.End), piece.Text));
            delta += piece.Text.Length - (piece.End - piece.Start);
            previousEnd = piece.End;
        }

        // Insertions at one position (an attribute line and 'partial' on an unindented line) become one change.
        var merged = new List<TextChange>();
        foreach (var change in changes)
        {
            if (merged.Count > 0 && merged[merged.Count - 1].Span.IsEmpty && change.Span.Start == merged[merged.Count - 1].Span.Start)
            {
                var last = merged[merged.Count - 1];
                merged[merged.Count - 1] = new TextChange(change.Span, last.NewText + change.NewText);
            }
            else
            {
                merged.Add(change);
            }
        }

        return (merged, names);
    }

    // The attribute goes on a line of its own above the declaration's first token (its first attribute,
    // modifier or keyword, after any doc comment or directive), indented with the same characters and
    // ended like that line. Where code precedes the declaration on its line, it goes inline before it.
    private static (int Position, string Text, int NameOffset) AttributeLine(SourceText text, int firstTokenStart)
    {
        var line = text.Lines.GetLineFromPosition(firstTokenStart);
        var before = text.ToString(TextSpan.FromBounds(line.Start, firstTokenStart));
        if (before.Trim().Length > 0)
        {
            return (firstTokenStart, "[" + QualifiedAttributeName + "] ", 1);
        }

        var endOfLine = LineLayout.EndOfLine(text, line);
        return (line.Start, before + "[" + QualifiedAttributeName + "]" + endOfLine, before.Length + 1);
    }

    private sealed class TypeRequest
    {
        public (DocumentId Document, TextSpan Span)? AttributeOn { get; set; }
    }

    private readonly struct TypeInsertion
    {
        private TypeInsertion(TypeDeclarationSyntax declaration, bool isAttribute)
        {
            FirstTokenStart = declaration.SpanStart;
            KeywordStart = declaration.Keyword.SpanStart;
            IsAttribute = isAttribute;
        }

        /// <summary>Where the declaration's first attribute, modifier or keyword starts (after its doc comment and directives).</summary>
        public int FirstTokenStart { get; }

        /// <summary>Where <c>class</c>, <c>struct</c> or <c>record</c> starts: <c>partial</c> goes right before it.</summary>
        public int KeywordStart { get; }

        public bool IsAttribute { get; }

        public static TypeInsertion Partial(TypeDeclarationSyntax declaration) => new(declaration, isAttribute: false);

        public static TypeInsertion Attribute(TypeDeclarationSyntax declaration) => new(declaration, isAttribute: true);
    }
}
