using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// Fix All for every ChunkedAttention fix. Roslyn's batch fixer merges per-diagnostic text changes
/// and drops the ones that overlap, and here they always overlap (two calls in one type both add
/// the attribute and <c>partial</c>). This provider instead hands all diagnostics of the scope to
/// <see cref="ChunkedAttentionFixer"/>, which groups them by type and edits each type once.
/// </summary>
internal sealed class ChunkedAttentionFixAllProvider : FixAllProvider
{
    public static readonly ChunkedAttentionFixAllProvider Instance = new();

    private ChunkedAttentionFixAllProvider()
    {
    }

    public override IEnumerable<FixAllScope> GetSupportedFixAllScopes() =>
        ImmutableArray.Create(FixAllScope.Document, FixAllScope.Project, FixAllScope.Solution);

    public override Task<CodeAction?> GetFixAsync(FixAllContext fixAllContext)
    {
        var title = fixAllContext.Scope switch
        {
            FixAllScope.Document => "Fix all in document",
            FixAllScope.Project => "Fix all in project",
            _ => "Fix all in solution",
        };

        var action = CodeAction.Create(
            title,
            cancellationToken => FixAsync(fixAllContext.WithCancellationToken(cancellationToken), cancellationToken),
            fixAllContext.CodeActionEquivalenceKey);
        return Task.FromResult<CodeAction?>(action);
    }

    private static async Task<Solution> FixAsync(FixAllContext context, CancellationToken cancellationToken)
    {
        var documents = context.Scope switch
        {
            FixAllScope.Document => context.Document is null ? Enumerable.Empty<Document>() : new[] { context.Document },
            FixAllScope.Project => context.Project.Documents,
            _ => context.Solution.Projects.SelectMany(p => p.Documents),
        };

        var diagnostics = new List<Diagnostic>();
        foreach (var document in documents)
        {
            cancellationToken.ThrowIfCancellationRequested();
            diagnostics.AddRange(await context.GetDocumentDiagnosticsAsync(document).ConfigureAwait(false));
        }

        return await ChunkedAttentionFixer.FixAsync(context.Solution, diagnostics, cancellationToken).ConfigureAwait(false);
    }
}
