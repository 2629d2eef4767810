using System.Collections.Immutable;
using System.Composition;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;

namespace ChunkedAttention.CodeFixes.HandWrittenAttention;

/// <summary>
/// "Use chunked attention" for SDPA007 and SDPA008: the hand-written chain becomes one
/// <c>ChunkedScaledDotProductAttention(q, k, v, ...)</c> call with the same mask, dropout and scale,
/// the statements and locals that only fed it are removed, the type gets [ChunkedAttention] (once)
/// and it and its containers become partial. Same title and equivalence key as SDPA001's fix.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(HandWrittenAttentionCodeFixProvider))]
[Shared]
public sealed class HandWrittenAttentionCodeFixProvider : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.HandWrittenInProcessorId,
        DiagnosticDescriptors.HandWrittenOutsideProcessorId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => ChunkedAttentionFixAllProvider.Instance;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null
            || AttentionChainRecognizer.For(model.Compilation, context.CancellationToken) is not { } recognizer
            || WrapperArguments.For(model.Compilation, context.CancellationToken) is not { } wrapper)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            // Offered only where the analyzer found a type that can receive the wrapper and the same recogniser
            // still accepts the chain and the call can be written.
            if (!ChunkedAttentionFixer.HasHost(diagnostic)
                || HandWrittenAttentionRewriter.FindChain(root, model, diagnostic, recognizer, context.CancellationToken) is not { } chain
                || ChainCallBuilder.Build(chain, wrapper) is null)
            {
                continue;
            }

            ChunkedAttentionFixer.RegisterFix(context, diagnostic, UseChunkedAttentionCodeFixProvider.Title, UseChunkedAttentionCodeFixProvider.EquivalenceKey);
        }
    }
}
