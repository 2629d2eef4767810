using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Simplification;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// Adds <c>using ChunkedAttention;</c> for attribute names inserted fully qualified, exactly where Roslyn's
/// import service puts it, and shortens the names.
/// </summary>
/// <remarks>
/// Roslyn decides the place (<see cref="ImportAdder"/>): inside or outside the namespace as the file
/// already does (or as <c>csharp_using_directive_placement</c> says), sorted in when the existing
/// directives are sorted (System first unless <c>dotnet_sort_system_directives_first = false</c>, plain
/// usings before <c>using static</c> before aliases), after the last one when they are not, and not at all
/// when a using or global using already imports the namespace. Roslyn leaves the new directive's layout
/// to the formatter, whose defaults (4 spaces, the OS line ending) are wrong for most files; instead the
/// directive is written like its neighbours here, and the result goes back as plain text, so no
/// formatting or elastic trivia is left for the code action's clean-up to apply.
/// </remarks>
internal static class ImportPlacement
{
    private static readonly SyntaxAnnotation AddImport = new("ChunkedAttention.AddImport");

    /// <summary>
    /// <paramref name="qualifiedNames"/>: spans of names written <c>global::ChunkedAttention.X</c> in
    /// <paramref name="document"/>. Returns the document with the using directive (where needed) and the
    /// names shortened (where that keeps their meaning).
    /// </summary>
    public static async Task<Document> AddUsingAndShortenAsync(Document document, IReadOnlyCollection<TextSpan> qualifiedNames, CancellationToken cancellationToken)
    {
        var text = await document.GetTextAsync(cancellationToken).ConfigureAwait(false);
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var names = qualifiedNames
            .Select(span => root.FindNode(span, getInnermostNodeForTie: true).AncestorsAndSelf().OfType<NameSyntax>().FirstOrDefault(n => n.Span == span))
            .Where(n => n is not null)
            .Select(n => n!)
            .ToList();
        if (names.Count == 0)
        {
            return document;
        }

        document = document.WithSyntaxRoot(root.ReplaceNodes(names, (_, name) => name.WithAdditionalAnnotations(Simplifier.Annotation, AddImport)));
        document = await ImportAdder.AddImportsAsync(document, AddImport, cancellationToken: cancellationToken).ConfigureAwait(false);
        document = await Simplifier.ReduceAsync(document, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);

        var newRoot = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (newRoot is null)
        {
            return document;
        }

        newRoot = LayOutAddedUsings(newRoot, LineLayout.FirstEndOfLine(text));
        return document.WithText(newRoot.GetText(text.Encoding, text.ChecksumAlgorithm));
    }

    // The import adder builds the directive with elastic trivia (zero-width, "let the formatter decide").
    // Give it its neighbours' indentation and line ending instead.
    private static SyntaxNode LayOutAddedUsings(SyntaxNode root, string fileEndOfLine)
    {
        var added = root.DescendantNodes(n => n is CompilationUnitSyntax or BaseNamespaceDeclarationSyntax)
            .OfType<UsingDirectiveSyntax>()
            .Where(IsAdded)
            .ToList();

        return root.ReplaceNodes(added, (original, _) => LayOut(original, fileEndOfLine));
    }

    private static bool IsAdded(UsingDirectiveSyntax directive) =>
        directive.Alias is null
        && directive.StaticKeyword.IsKind(SyntaxKind.None)
        && directive.GlobalKeyword.IsKind(SyntaxKind.None)
        && directive.Name?.ToString() == WellKnownNames.RuntimeNamespace
        && directive.DescendantTrivia().Any(IsElastic);

    private static bool IsElastic(SyntaxTrivia trivia) => trivia.HasAnnotation(SyntaxAnnotation.ElasticAnnotation);

    private static UsingDirectiveSyntax LayOut(UsingDirectiveSyntax directive, string fileEndOfLine)
    {
        var siblings = directive.Parent switch
        {
            CompilationUnitSyntax unit => unit.Usings,
            BaseNamespaceDeclarationSyntax ns => ns.Usings,
            _ => default,
        };

        var index = siblings.IndexOf(directive);
        var neighbour = siblings.Take(index).Reverse().Concat(siblings.Skip(index + 1)).FirstOrDefault(u => !IsAdded(u));
        var indentation = neighbour is not null
            ? LineLayout.Indentation(neighbour.GetLeadingTrivia())
            : directive.Parent is BaseNamespaceDeclarationSyntax { Members.Count: > 0 } container
                ? LineLayout.Indentation(container.Members[0].GetLeadingTrivia())
                : string.Empty;
        var endOfLine = neighbour?.GetTrailingTrivia().LastOrDefault(t => t.IsKind(SyntaxKind.EndOfLineTrivia)).ToString() is { Length: > 0 } eol
            ? eol
            : fileEndOfLine;

        // Comments and blank lines the import adder moved onto the directive (a file banner) stay; the
        // zero-width elastic markers go; the line gets the indentation.
        var leading = directive.GetLeadingTrivia().Where(t => !IsElastic(t)).ToList();
        while (leading.Count > 0 && leading[leading.Count - 1].IsKind(SyntaxKind.WhitespaceTrivia))
        {
            leading.RemoveAt(leading.Count - 1);
        }

        if (indentation.Length > 0)
        {
            leading.Add(SyntaxFactory.Whitespace(indentation));
        }

        var trailing = directive.GetTrailingTrivia().Where(t => !IsElastic(t)).ToList();
        if (!trailing.Any(t => t.IsKind(SyntaxKind.EndOfLineTrivia)))
        {
            trailing.Add(SyntaxFactory.EndOfLine(endOfLine));
        }

        return SyntaxFactory.UsingDirective(SyntaxFactory.ParseName(directive.Name!.ToString()))
            .WithUsingKeyword(SyntaxFactory.Token(SyntaxFactory.TriviaList(leading), SyntaxKind.UsingKeyword, SyntaxFactory.TriviaList(SyntaxFactory.Space)))
            .WithSemicolonToken(SyntaxFactory.Token(SyntaxFactory.TriviaList(), SyntaxKind.SemicolonToken, SyntaxFactory.TriviaList(trailing)));
    }
}
