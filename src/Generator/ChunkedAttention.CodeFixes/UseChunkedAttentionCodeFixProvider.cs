using System.Collections.Immutable;
using System.Composition;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// "Use chunked attention" for SDPA001, SDPA004 and SDPA005: the call becomes
/// <c>ChunkedScaledDotProductAttention(...)</c> with its arguments untouched, the type gets
/// [ChunkedAttention] (once) and the type and its containers become partial.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(UseChunkedAttentionCodeFixProvider))]
[Shared]
public sealed class UseChunkedAttentionCodeFixProvider : CodeFixProvider
{
    /// <summary>Title shown in the IDE's light bulb.</summary>
    public const string Title = "Use chunked attention";

    /// <summary>Equivalence key shared by every instance of this fix, so Fix All groups them.</summary>
    public const string EquivalenceKey = "ChunkedAttention.UseChunkedAttention";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.DirectCallInProcessorId,
        DiagnosticDescriptors.CausalWithMaskId,
        DiagnosticDescriptors.DirectCallOutsideProcessorId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => ChunkedAttentionFixAllProvider.Instance;

    /// <inheritdoc/>
    public override Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        foreach (var diagnostic in context.Diagnostics)
        {
            // Offered where the analyzer found a type that can receive the wrapper, nowhere else.
            if (ChunkedAttentionFixer.HasHost(diagnostic))
            {
                ChunkedAttentionFixer.RegisterFix(context, diagnostic, Title, EquivalenceKey);
            }
        }

        return Task.CompletedTask;
    }
}
