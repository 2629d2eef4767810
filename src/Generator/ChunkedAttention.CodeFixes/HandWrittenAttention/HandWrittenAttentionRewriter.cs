using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Analysis.HandWrittenAttention;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes.HandWrittenAttention;

/// <summary>
/// The chain part of "Use chunked attention" for SDPA007/SDPA008: re-runs the shared recogniser on
/// each diagnostic's final product, replaces that product with the single call, and removes the
/// statements that only fed the chain. It runs before <see cref="ChunkedAttentionFixer"/>'s type
/// edits: each rewritten diagnostic then points at its new call, which the engine treats like a
/// call it already renamed (attribute once per type, <c>partial</c>, using directive).
/// </summary>
internal static class HandWrittenAttentionRewriter
{
    /// <summary>True for SDPA007 and SDPA008.</summary>
    public static bool IsChainDiagnostic(string id) =>
        id is DiagnosticDescriptors.HandWrittenInProcessorId or DiagnosticDescriptors.HandWrittenOutsideProcessorId;

    /// <summary>The chain <paramref name="diagnostic"/> reports, when the recogniser still accepts it as the analyzer did.</summary>
    public static AttentionChain? FindChain(
        SyntaxNode root, SemanticModel model, Diagnostic diagnostic, AttentionChainRecognizer recognizer, CancellationToken cancellationToken)
    {
        var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
        var syntax = node.FirstAncestorOrSelf<InvocationExpressionSyntax>();
        if (syntax is null || model.GetOperation(syntax, cancellationToken) is not IInvocationOperation invocation)
        {
            return null;
        }

        var chain = recognizer.Analyze(invocation, cancellationToken).Chain;
        if (chain is null
            || (diagnostic.Properties.TryGetValue(HandWrittenAttentionAnalyzer.StepsProperty, out var steps) && steps is not null && steps != chain.Summary))
        {
            return null;
        }

        return chain;
    }

    /// <summary>
    /// Rewrites every chain reported by <paramref name="diagnostics"/>. Returns the new solution and
    /// the diagnostics to hand on: the rewritten chains' (now on their calls) and every other
    /// diagnostic, moved to where its code now is. Chains that no longer qualify are dropped.
    /// </summary>
    public static async Task<(Solution Solution, List<Diagnostic> Diagnostics)> RewriteAsync(
        Solution solution, IEnumerable<Diagnostic> diagnostics, CancellationToken cancellationToken)
    {
        var all = diagnostics.ToList();
        var chainDiagnostics = all.Where(d => IsChainDiagnostic(d.Id) && d.Location.IsInSource).ToList();
        if (chainDiagnostics.Count == 0)
        {
            return (solution, all);
        }

        var result = all.Where(d => !IsChainDiagnostic(d.Id)).ToList();
        var byDocument = chainDiagnostics
            .GroupBy(d => solution.GetDocument(d.Location.SourceTree)?.Id)
            .Where(g => g.Key is not null)
            .OrderBy(g => g.First().Location.SourceTree!.FilePath, System.StringComparer.Ordinal);

        foreach (var group in byDocument)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var document = solution.GetDocument(group.Key!)!;
            var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
            var model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
            if (root is null || model is null
                || AttentionChainRecognizer.For(model.Compilation, cancellationToken) is not { } recognizer
                || WrapperArguments.For(model.Compilation, cancellationToken) is not { } wrapper)
            {
                continue;
            }

            var plans = Plan(root, model, group.OrderBy(d => d.Location.SourceSpan.Start), recognizer, wrapper, cancellationToken);
            if (plans.Count == 0)
            {
                continue;
            }

            // Diagnostics elsewhere in this document move with their code.
            var moved = result.Where(d => d.Location.SourceTree == root.SyntaxTree).ToList();
            var markers = new Dictionary<Diagnostic, SyntaxAnnotation>();
            foreach (var diagnostic in moved)
            {
                markers.Add(diagnostic, new SyntaxAnnotation("ChunkedAttention.Diagnostic"));
            }

            var newRoot = Apply(root, plans, markers);
            document = document.WithSyntaxRoot(newRoot);
            solution = document.Project.Solution;
            var newTree = (await document.GetSyntaxTreeAsync(cancellationToken).ConfigureAwait(false))!;
            newRoot = await newTree.GetRootAsync(cancellationToken).ConfigureAwait(false);

            foreach (var diagnostic in moved)
            {
                result.Remove(diagnostic);
                var marked = newRoot.GetAnnotatedNodesAndTokens(markers[diagnostic]).FirstOrDefault();
                if (marked != default)
                {
                    result.Add(Relocate(diagnostic, Location.Create(newTree, marked.Span)));
                }
            }

            foreach (var plan in plans)
            {
                if (newRoot.GetAnnotatedNodes(plan.Marker).OfType<InvocationExpressionSyntax>().FirstOrDefault() is { } call)
                {
                    result.Add(Relocate(plan.Diagnostic, Location.Create(newTree, call.Expression.Span)));
                }
            }
        }

        return (solution, result);
    }

    private static Diagnostic Relocate(Diagnostic diagnostic, Location location) =>
        Diagnostic.Create(diagnostic.Descriptor, location, diagnostic.AdditionalLocations, diagnostic.Properties);

    /// <summary>One chain to rewrite in a document.</summary>
    private sealed class ChainPlan
    {
        public ChainPlan(Diagnostic diagnostic, AttentionChain chain, ExpressionSyntax call)
        {
            Diagnostic = diagnostic;
            Chain = chain;
            Call = call;
        }

        public Diagnostic Diagnostic { get; }

        public AttentionChain Chain { get; }

        public ExpressionSyntax Call { get; }

        public SyntaxAnnotation Marker { get; } = new("ChunkedAttention.ChainCall");

        public List<StatementSyntax> Removed { get; } = new();

        public TypeSyntax? OutputType { get; set; }

        public IEnumerable<TextSpan> Spans => Removed.Select(s => s.FullSpan).Append(Chain.Final.Syntax.Span);
    }

    private static List<ChainPlan> Plan(
        SyntaxNode root,
        SemanticModel model,
        IEnumerable<Diagnostic> diagnostics,
        AttentionChainRecognizer recognizer,
        WrapperArguments wrapper,
        CancellationToken cancellationToken)
    {
        var plans = new List<ChainPlan>();
        var taken = new List<TextSpan>();
        foreach (var diagnostic in diagnostics)
        {
            if (FindChain(root, model, diagnostic, recognizer, cancellationToken) is not { } chain
                || ChainCallBuilder.Build(chain, wrapper) is not { } call)
            {
                continue;
            }

            var plan = new ChainPlan(diagnostic, chain, call);
            var complete = true;
            foreach (var statement in chain.RemovedStatements)
            {
                if (statement.Syntax is StatementSyntax { Parent: BlockSyntax } syntax)
                {
                    plan.Removed.Add(syntax);
                    if (chain.OutputDeclaresLocal is { } local && statement is IVariableDeclarationGroupOperation group
                        && group.Declarations.Any(d => d.Declarators.Any(v => SymbolEqualityComparer.Default.Equals(v.Symbol, local)))
                        && syntax is LocalDeclarationStatementSyntax declaration)
                    {
                        plan.OutputType = declaration.Declaration.Type;
                    }
                }
                else
                {
                    complete = false;
                }
            }

            if (!complete || (chain.OutputDeclaresLocal is not null && (plan.OutputType is null || chain.FinalStatement?.Syntax is not ExpressionStatementSyntax)))
            {
                continue;
            }

            // Two chains sharing code (one nested in the other's value): the first wins, the other waits for the next run.
            if (plan.Spans.Any(span => taken.Any(other => other.IntersectsWith(span))))
            {
                continue;
            }

            taken.AddRange(plan.Spans);
            plans.Add(plan);
        }

        return plans;
    }

    private static SyntaxNode Apply(SyntaxNode root, List<ChainPlan> plans, Dictionary<Diagnostic, SyntaxAnnotation> markers)
    {
        var finals = new Dictionary<SyntaxNode, ChainPlan>();
        var outputs = new Dictionary<SyntaxNode, ChainPlan>();
        var removals = new Dictionary<BlockSyntax, HashSet<int>>();
        foreach (var plan in plans)
        {
            finals.Add(plan.Chain.Final.Syntax, plan);
            if (plan.Chain.OutputDeclaresLocal is not null)
            {
                outputs.Add(plan.Chain.FinalStatement!.Syntax, plan);
            }

            foreach (var statement in plan.Removed)
            {
                var block = (BlockSyntax)statement.Parent!;
                if (!removals.TryGetValue(block, out var indices))
                {
                    indices = new HashSet<int>();
                    removals.Add(block, indices);
                }

                indices.Add(block.Statements.IndexOf(statement));
            }
        }

        var markedNodes = new Dictionary<SyntaxNode, SyntaxAnnotation>();
        var markedTokens = new Dictionary<SyntaxToken, SyntaxAnnotation>();
        foreach (var pair in markers)
        {
            var span = pair.Key.Location.SourceSpan;
            var node = root.FindNode(span, getInnermostNodeForTie: true);
            if (node.Span == span && !markedNodes.ContainsKey(node))
            {
                markedNodes.Add(node, pair.Value);
                continue;
            }

            var token = root.FindToken(span.Start);
            if (token.Span == span && !markedTokens.ContainsKey(token))
            {
                markedTokens.Add(token, pair.Value);
            }
        }

        var nodes = finals.Keys.Concat(outputs.Keys).Concat(removals.Keys).Concat(markedNodes.Keys).Distinct().ToList();
        return root.ReplaceSyntax(
            nodes,
            (original, rewritten) =>
            {
                var result = rewritten;
                if (finals.TryGetValue(original, out var plan))
                {
                    result = plan.Call.WithTriviaFrom(original).WithAdditionalAnnotations(plan.Marker);
                }

                if (outputs.TryGetValue(original, out var output))
                {
                    result = Declare((ExpressionStatementSyntax)result, output);
                }

                if (original is BlockSyntax block && removals.TryGetValue(block, out var indices))
                {
                    result = RemoveStatements((BlockSyntax)result, indices);
                }

                if (markedNodes.TryGetValue(original, out var marker))
                {
                    result = result.WithAdditionalAnnotations(marker);
                }

                return result;
            },
            markedTokens.Keys,
            (original, rewritten) => rewritten.WithAdditionalAnnotations(markedTokens[original]),
            Enumerable.Empty<SyntaxTrivia>(),
            (original, rewritten) => rewritten);
    }

    // 'att = <call>;' whose local's declaration went with the chain becomes that declaration: 'var att = <call>;'.
    private static StatementSyntax Declare(ExpressionStatementSyntax statement, ChainPlan plan)
    {
        var assignment = (AssignmentExpressionSyntax)statement.Expression;
        var declaration = SyntaxFactory.LocalDeclarationStatement(
            SyntaxFactory.VariableDeclaration(
                plan.OutputType!.WithoutTrivia().WithTrailingTrivia(SyntaxFactory.Space),
                SyntaxFactory.SingletonSeparatedList(
                    SyntaxFactory.VariableDeclarator(SyntaxFactory.Identifier(plan.Chain.OutputDeclaresLocal!.Name))
                        .WithTrailingTrivia(assignment.Left.GetTrailingTrivia())
                        .WithInitializer(SyntaxFactory.EqualsValueClause(assignment.OperatorToken, assignment.Right)))));
        return declaration.WithSemicolonToken(statement.SemicolonToken).WithTriviaFrom(statement);
    }

    // Removes the statements at the given indices. The leading trivia of the first statement of each
    // removed run (a header comment, a blank line) moves to the statement that follows; comments
    // on the removed lines themselves go with them.
    private static BlockSyntax RemoveStatements(BlockSyntax block, HashSet<int> indices)
    {
        var kept = new List<StatementSyntax>();
        SyntaxTriviaList? carried = null;
        for (var i = 0; i < block.Statements.Count; i++)
        {
            var statement = block.Statements[i];
            if (indices.Contains(i))
            {
                if (i == 0 || !indices.Contains(i - 1))
                {
                    carried = statement.GetLeadingTrivia();
                }

                continue;
            }

            if (carried is { } header)
            {
                statement = statement.WithLeadingTrivia(Carry(header, statement.GetLeadingTrivia()));
                carried = null;
            }

            kept.Add(statement);
        }

        var result = block.WithStatements(SyntaxFactory.List(kept));
        if (carried is { } trailing)
        {
            result = result.WithCloseBraceToken(result.CloseBraceToken.WithLeadingTrivia(Carry(trailing, result.CloseBraceToken.LeadingTrivia)));
        }

        return result;
    }

    // The lines before the removed run (blank lines, header comments) take the place of the blank
    // lines before the next statement, so the spacing is what it was at the top of the run.
    private static SyntaxTriviaList Carry(SyntaxTriviaList header, SyntaxTriviaList next)
    {
        var end = header.Count;
        while (end > 0 && header[end - 1].IsKind(SyntaxKind.WhitespaceTrivia))
        {
            end--;
        }

        var merged = header.Take(end).ToList();
        merged.AddRange(next.Skip(BlankLines(next)));
        return SyntaxFactory.TriviaList(merged);
    }

    // How many leading trivia of the list are blank lines (optional whitespace, then a line break).
    private static int BlankLines(SyntaxTriviaList trivia)
    {
        var count = 0;
        for (var i = 0; i < trivia.Count; i++)
        {
            if (trivia[i].IsKind(SyntaxKind.EndOfLineTrivia))
            {
                count = i + 1;
            }
            else if (!trivia[i].IsKind(SyntaxKind.WhitespaceTrivia))
            {
                break;
            }
        }

        return count;
    }
}
