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
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// The one engine behind every ChunkedAttention fix, single or Fix All: it turns each diagnostic into
/// its edits (calls to rename, types to mark or make partial) and hands them all to one
/// <see cref="ChunkedAttentionEdits"/>, which applies them together, each type once.
/// </summary>
internal static class ChunkedAttentionFixer
{
    /// <summary>True for the diagnostics this engine fixes by switching the call to the chunked wrapper.</summary>
    public static bool IsCallDiagnostic(string id) =>
        id is DiagnosticDescriptors.DirectCallInProcessorId
            or DiagnosticDescriptors.CausalWithMaskId
            or DiagnosticDescriptors.DirectCallOutsideProcessorId
            || HandWrittenAttentionRewriter.IsChainDiagnostic(id);

    /// <summary>
    /// Whether the analyzer decided the fix applies: it passes the type that receives the wrapper only where the
    /// fixed code compiles (<see cref="FixProperties.HostType"/>; not in top-level statements, interfaces,
    /// file-local types, without the runtime, ...). The fixer does not decide again.
    /// </summary>
    public static bool HasHost(Diagnostic diagnostic) =>
        diagnostic.Properties.TryGetValue(FixProperties.HostType, out var id) && !string.IsNullOrEmpty(id);

    /// <summary>
    /// The call a diagnostic points at, the type the analyzer chose to receive the wrapper, and the declaration
    /// of that type around the call (where the attribute goes). False when the diagnostic carries no host, or
    /// the document no longer has the call.
    /// </summary>
    public static bool TryGetCallSite(
        Diagnostic diagnostic,
        SyntaxNode root,
        SemanticModel model,
        CancellationToken cancellationToken,
        out InvocationExpressionSyntax invocation,
        out INamedTypeSymbol type,
        out TypeDeclarationSyntax declaration)
    {
        invocation = null!;
        type = null!;
        declaration = null!;
        if (!diagnostic.Properties.TryGetValue(FixProperties.HostType, out var id)
            || id is null
            || DocumentationCommentId.GetFirstSymbolForDeclarationId(id, model.Compilation) is not INamedTypeSymbol host
            || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true).FirstAncestorOrSelf<InvocationExpressionSyntax>() is not { } found)
        {
            return false;
        }

        foreach (var candidate in found.Ancestors().OfType<TypeDeclarationSyntax>())
        {
            if (SymbolEqualityComparer.Default.Equals(model.GetDeclaredSymbol(candidate, cancellationToken), host))
            {
                invocation = found;
                type = host;
                declaration = candidate;
                return true;
            }
        }

        return false;
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

    /// <summary>
    /// Applies the fixes for <paramref name="diagnostics"/> (any mix of IDs and documents) in one pass:
    /// each diagnostic adds its edits to one <see cref="ChunkedAttentionEdits"/>, which applies them together.
    /// </summary>
    public static async Task<Solution> FixAsync(Solution solution, IEnumerable<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        // Hand-written chains (SDPA007/SDPA008) become calls first; their diagnostics then point at
        // the new calls, which the steps below treat like renamed calls.
        (solution, var remaining) = await HandWrittenAttentionRewriter.RewriteAsync(solution, diagnostics, cancellationToken).ConfigureAwait(false);
        diagnostics = remaining;
        var edits = new ChunkedAttentionEdits(solution);

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
                AddCallFix(edits, document, root, model, diagnostic, cancellationToken);
            }
            else if (diagnostic.Id == DiagnosticDescriptors.NotPartialId
                && FindDeclaration(root, diagnostic.Location.SourceSpan) is { } declaration
                && model.GetDeclaredSymbol(declaration, cancellationToken) is { } declared)
            {
                edits.MakePartial(declared);
            }
        }

        return edits.IsEmpty ? solution : await edits.ApplyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>SDPA001/004/005: the call's name becomes the wrapper's; the type gets the attribute and <c>partial</c>.</summary>
    private static void AddCallFix(ChunkedAttentionEdits edits, Document document, SyntaxNode root, SemanticModel model, Diagnostic diagnostic, CancellationToken cancellationToken)
    {
        if (!TryGetCallSite(diagnostic, root, model, cancellationToken, out var invocation, out var type, out var declaration))
        {
            return;
        }

        // Only the callee text changes ('nn.functional.scaled_dot_product_attention' or an alias or
        // 'using static' form); arguments, comments and line breaks around it stay as they are.
        edits.Replace(document.Id, invocation.Expression.Span, WellKnownNames.GeneratedMethodName);
        edits.AddChunkedAttention(type, declaration);
    }
}
