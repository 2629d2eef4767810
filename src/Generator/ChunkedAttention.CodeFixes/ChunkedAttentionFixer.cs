using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.CodeFixes.HandWrittenAttention;
using ChunkedAttention.Generator;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Simplification;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// The one engine behind every ChunkedAttention fix, single or Fix All. It first collects what each
/// type needs (calls to rename, the attribute, <c>partial</c> on the type and its containers) across
/// all diagnostics, then edits each document once. Grouping by type symbol is what keeps two calls
/// in one type, or one type split over several files, from getting the attribute twice.
/// </summary>
internal static class ChunkedAttentionFixer
{
    private static readonly SyntaxAnnotation ImportAnnotation = new("ChunkedAttention.AddImport");

    /// <summary>True for the diagnostics this engine fixes by switching the call to the chunked wrapper.</summary>
    public static bool IsCallDiagnostic(string id) =>
        id is DiagnosticDescriptors.DirectCallInProcessorId
            or DiagnosticDescriptors.CausalWithMaskId
            or DiagnosticDescriptors.DirectCallOutsideProcessorId
            || HandWrittenAttentionRewriter.IsChainDiagnostic(id);

    /// <summary>
    /// Finds the call a diagnostic points at and the type that would receive the wrapper. False
    /// where the fix cannot produce compiling code: top-level statements, interfaces, or a
    /// compilation without the ChunkedAttention runtime.
    /// </summary>
    public static bool TryGetCallSite(
        SyntaxNode root,
        SemanticModel model,
        TextSpan span,
        CancellationToken cancellationToken,
        out InvocationExpressionSyntax invocation,
        out INamedTypeSymbol type)
    {
        invocation = null!;
        type = null!;
        if (model.Compilation.GetTypeByMetadataName(WellKnownNames.ChunkedAttentionAttribute) is null)
        {
            return false;
        }

        var found = root.FindNode(span, getInnermostNodeForTie: true).FirstAncestorOrSelf<InvocationExpressionSyntax>();
        var declaration = found?.Ancestors().OfType<TypeDeclarationSyntax>().FirstOrDefault();
        if (found is null || declaration is not (ClassDeclarationSyntax or StructDeclarationSyntax or RecordDeclarationSyntax))
        {
            return false;
        }

        if (model.GetDeclaredSymbol(declaration, cancellationToken) is not { TypeKind: TypeKind.Class or TypeKind.Struct } symbol)
        {
            return false;
        }

        invocation = found;
        type = symbol;
        return true;
    }

    /// <summary>Finds the type declaration an SDPA002 diagnostic points at.</summary>
    public static TypeDeclarationSyntax? FindDeclaration(SyntaxNode root, TextSpan span) =>
        root.FindToken(span.Start).Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>();

    /// <summary>Offers the fix of <paramref name="diagnostic"/> alone (Fix All goes through <see cref="ChunkedAttentionFixAllProvider"/>).</summary>
    public static void RegisterFix(CodeFixContext context, Diagnostic diagnostic, string title, string equivalenceKey)
    {
        var solution = context.Document.Project.Solution;
        context.RegisterCodeFix(
            CodeAction.Create(title, cancellationToken => FixAsync(solution, new[] { diagnostic }, cancellationToken), equivalenceKey),
            diagnostic);
    }

    /// <summary>Applies the fixes for <paramref name="diagnostics"/> (any mix of IDs and documents) in one pass.</summary>
    public static async Task<Solution> FixAsync(Solution solution, IEnumerable<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        // Hand-written chains (SDPA007/SDPA008) become calls first; their diagnostics then point at
        // the new calls, which the steps below treat like renamed calls.
        (solution, var remaining) = await HandWrittenAttentionRewriter.RewriteAsync(solution, diagnostics, cancellationToken).ConfigureAwait(false);
        diagnostics = remaining;

        var work = new Dictionary<INamedTypeSymbol, TypeWork>(SymbolEqualityComparer.Default);
        var edits = new Dictionary<DocumentId, DocumentEdits>();

        // A stable order makes the attribute land on the same declaration however Fix All batches.
        var ordered = diagnostics
            .Where(d => d.Location.IsInSource)
            .OrderBy(d => d.Location.SourceTree!.FilePath, StringComparer.Ordinal)
            .ThenBy(d => d.Location.SourceSpan.Start);

        foreach (var diagnostic in ordered)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var document = solution.GetDocument(diagnostic.Location.SourceTree);
            if (document is null)
            {
                continue;
            }

            var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
            var model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
            if (root is null || model is null)
            {
                continue;
            }

            if (IsCallDiagnostic(diagnostic.Id))
            {
                if (!TryGetCallSite(root, model, diagnostic.Location.SourceSpan, cancellationToken, out var invocation, out var type))
                {
                    continue;
                }

                GetEdits(edits, document.Id).CallNames.Add(invocation.Expression.Span);
                var typeWork = GetWork(work, type);
                typeWork.NeedsAttribute = true;
                typeWork.AttributeTarget ??= (document.Id, invocation.Ancestors().OfType<TypeDeclarationSyntax>().First().Span);
            }
            else if (diagnostic.Id == DiagnosticDescriptors.NotPartialId
                && FindDeclaration(root, diagnostic.Location.SourceSpan) is { } declaration
                && model.GetDeclaredSymbol(declaration, cancellationToken) is { } declared)
            {
                GetWork(work, declared);
            }
        }

        foreach (var pair in work)
        {
            PlanTypeEdits(solution, pair.Key, pair.Value, edits, cancellationToken);
        }

        foreach (var pair in edits)
        {
            var document = solution.GetDocument(pair.Key);
            if (document is not null)
            {
                document = await ApplyAsync(document, pair.Value, cancellationToken).ConfigureAwait(false);
                solution = document.Project.Solution;
            }
        }

        return solution;
    }

    private static TypeWork GetWork(Dictionary<INamedTypeSymbol, TypeWork> work, INamedTypeSymbol type)
    {
        if (!work.TryGetValue(type, out var typeWork))
        {
            typeWork = new TypeWork();
            work.Add(type, typeWork);
        }

        return typeWork;
    }

    private static DocumentEdits GetEdits(Dictionary<DocumentId, DocumentEdits> edits, DocumentId id)
    {
        if (!edits.TryGetValue(id, out var documentEdits))
        {
            documentEdits = new DocumentEdits();
            edits.Add(id, documentEdits);
        }

        return documentEdits;
    }

    private static void PlanTypeEdits(
        Solution solution,
        INamedTypeSymbol type,
        TypeWork typeWork,
        Dictionary<DocumentId, DocumentEdits> edits,
        CancellationToken cancellationToken)
    {
        // Every declaration of the type and of each container, wherever it lives, must be partial.
        for (var current = type; current is not null; current = current.ContainingType)
        {
            foreach (var reference in current.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration
                    && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword)
                    && solution.GetDocumentId(reference.SyntaxTree) is { } documentId)
                {
                    GetEdits(edits, documentId).Partial.Add(declaration.Span);
                }
            }
        }

        // The attribute goes on once, and only if no declaration of the type has it yet.
        if (typeWork.NeedsAttribute && typeWork.AttributeTarget is { } target && !HasChunkedAttention(type))
        {
            GetEdits(edits, target.Document).Attribute.Add(target.Declaration);
        }
    }

    private static bool HasChunkedAttention(INamedTypeSymbol type) =>
        type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == WellKnownNames.ChunkedAttentionAttribute);

    private static async Task<Document> ApplyAsync(Document document, DocumentEdits edits, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var endOfLine = DetectEndOfLine(root);
        var targets = new List<SyntaxNode>();
        foreach (var span in edits.CallNames)
        {
            if (FindNode<ExpressionSyntax>(root, span) is { } expression)
            {
                targets.Add(expression);
            }
        }

        foreach (var span in edits.Partial.Concat(edits.Attribute).Distinct())
        {
            if (FindNode<TypeDeclarationSyntax>(root, span) is { } declaration)
            {
                targets.Add(declaration);
            }
        }

        // ReplaceNodes hands each declaration over with its inner calls already renamed, so nested
        // edits compose instead of overwriting each other.
        var newRoot = root.ReplaceNodes(targets, (original, rewritten) =>
        {
            if (original is TypeDeclarationSyntax originalDeclaration)
            {
                var declaration = (TypeDeclarationSyntax)rewritten;
                if (edits.Partial.Contains(originalDeclaration.Span))
                {
                    declaration = AddPartial(declaration);
                }

                if (edits.Attribute.Contains(originalDeclaration.Span))
                {
                    declaration = AddAttribute(declaration, endOfLine);
                }

                return declaration;
            }

            return SyntaxFactory.IdentifierName(WellKnownNames.GeneratedMethodName).WithTriviaFrom(original);
        });

        document = document.WithSyntaxRoot(newRoot);
        if (edits.Attribute.Count > 0)
        {
            // Adds 'using ChunkedAttention;' where the file keeps its usings, then shortens the name.
            document = await ImportAdder.AddImportsAsync(document, ImportAnnotation, cancellationToken: cancellationToken).ConfigureAwait(false);
            document = await Simplifier.ReduceAsync(document, Simplifier.Annotation, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return document;
    }

    private static T? FindNode<T>(SyntaxNode root, TextSpan span)
        where T : SyntaxNode =>
        root.FindNode(span, getInnermostNodeForTie: true).AncestorsAndSelf().OfType<T>().FirstOrDefault(n => n.Span == span);

    private static TypeDeclarationSyntax AddPartial(TypeDeclarationSyntax declaration)
    {
        if (declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
        {
            return declaration;
        }

        // 'partial' must come right before the keyword ('static partial class', 'readonly partial struct').
        if (declaration.Modifiers.Count == 0)
        {
            var keyword = declaration.Keyword;
            var partial = SyntaxFactory.Token(keyword.LeadingTrivia, SyntaxKind.PartialKeyword, SyntaxFactory.TriviaList(SyntaxFactory.Space));
            return declaration
                .WithKeyword(keyword.WithLeadingTrivia(SyntaxFactory.TriviaList()))
                .WithModifiers(SyntaxFactory.TokenList(partial));
        }

        return declaration.WithModifiers(declaration.Modifiers.Add(
            SyntaxFactory.Token(SyntaxKind.PartialKeyword).WithTrailingTrivia(SyntaxFactory.Space)));
    }

    private static TypeDeclarationSyntax AddAttribute(TypeDeclarationSyntax declaration, SyntaxTrivia endOfLine)
    {
        var leading = declaration.GetLeadingTrivia();
        var indentation = TrailingIndentation(leading);

        // Written fully qualified and annotated: the import adder and simplifier turn it into
        // [ChunkedAttention] plus a using directive, or keep a qualified name where a using cannot help.
        var name = SyntaxFactory.QualifiedName(
            SyntaxFactory.AliasQualifiedName(
                SyntaxFactory.IdentifierName(SyntaxFactory.Token(SyntaxKind.GlobalKeyword)),
                SyntaxFactory.IdentifierName(WellKnownNames.RuntimeNamespace)),
            SyntaxFactory.IdentifierName(WellKnownNames.ChunkedAttentionAttributeShortName))
            .WithAdditionalAnnotations(Simplifier.Annotation, ImportAnnotation);

        var attributeList = SyntaxFactory.AttributeList(SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Attribute(name)))
            .WithLeadingTrivia(leading)
            .WithTrailingTrivia(endOfLine);

        var withoutLeading = declaration.WithLeadingTrivia(indentation);
        return (TypeDeclarationSyntax)withoutLeading.WithAttributeLists(withoutLeading.AttributeLists.Insert(0, attributeList));
    }

    // The whitespace after the last line break of the leading trivia: the declaration's indentation.
    private static SyntaxTriviaList TrailingIndentation(SyntaxTriviaList leading)
    {
        var result = new List<SyntaxTrivia>();
        for (var i = leading.Count - 1; i >= 0; i--)
        {
            if (!leading[i].IsKind(SyntaxKind.WhitespaceTrivia))
            {
                break;
            }

            result.Insert(0, leading[i]);
        }

        return SyntaxFactory.TriviaList(result);
    }

    private static SyntaxTrivia DetectEndOfLine(SyntaxNode root)
    {
        foreach (var trivia in root.DescendantTrivia())
        {
            if (trivia.IsKind(SyntaxKind.EndOfLineTrivia))
            {
                return trivia;
            }
        }

        return SyntaxFactory.EndOfLine(Environment.NewLine);
    }

    private sealed class TypeWork
    {
        public bool NeedsAttribute { get; set; }

        public (DocumentId Document, TextSpan Declaration)? AttributeTarget { get; set; }
    }

    private sealed class DocumentEdits
    {
        public HashSet<TextSpan> CallNames { get; } = new();

        public HashSet<TextSpan> Partial { get; } = new();

        public HashSet<TextSpan> Attribute { get; } = new();
    }
}
