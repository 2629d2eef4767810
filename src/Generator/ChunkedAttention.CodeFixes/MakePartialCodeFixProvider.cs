using System.Collections.Immutable;
using System.Composition;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;

namespace ChunkedAttention.CodeFixes;

/// <summary>"Make partial" for SDPA002: the reported type and every type containing it become partial.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(MakePartialCodeFixProvider))]
[Shared]
public sealed class MakePartialCodeFixProvider : CodeFixProvider
{
    /// <summary>Title shown in the IDE's light bulb.</summary>
    public const string Title = "Make partial";

    /// <summary>Equivalence key shared by every instance of this fix, so Fix All groups them.</summary>
    public const string EquivalenceKey = "ChunkedAttention.MakePartial";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticDescriptors.NotPartialId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => ChunkedAttentionFixAllProvider.Instance;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            if (ChunkedAttentionFixer.FindDeclaration(root, diagnostic.Location.SourceSpan) is null)
            {
                continue;
            }

            ChunkedAttentionFixer.RegisterFix(context, diagnostic, Title, EquivalenceKey);
        }
    }
}
