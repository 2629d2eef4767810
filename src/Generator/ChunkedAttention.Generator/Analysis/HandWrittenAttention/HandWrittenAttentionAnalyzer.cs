using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using ChunkedAttention.Generator.Rules;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis.HandWrittenAttention;

/// <summary>
/// Finds hand-written attention (q·kᵀ, scale, mask, softmax, dropout, ·v) that one SDPA call can
/// replace with the same results: SDPA007 inside attention processors, SDPA008 elsewhere. Reported
/// only where the fix applies, i.e. where <see cref="AttentionChainRecognizer"/> accepts the chain.
/// </summary>
/// <remarks>
/// The diagnostic sits on the name of the final <c>matmul</c>/<c>bmm</c>, where the call will be.
/// Its properties carry the recognised steps, which the fixer checks against its own run of the
/// same recogniser before it rewrites anything.
/// </remarks>
[DiagnosticAnalyzer(Microsoft.CodeAnalysis.LanguageNames.CSharp)]
public sealed class HandWrittenAttentionAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The property holding <see cref="AttentionChain.Summary"/>.</summary>
    public const string StepsProperty = "Steps";

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.HandWrittenInProcessor,
        DiagnosticDescriptors.HandWrittenOutsideProcessor);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();

        // Generated code is skipped here, per candidate (see IsGenerated), not by Roslyn: its filter
        // walks every token of a tree the first time a diagnostic is reported in it, which in a project
        // with hand-written attention cost more than the analysis itself.
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.Analyze | GeneratedCodeAnalysisFlags.ReportDiagnostics);
        context.RegisterCompilationStartAction(static start =>
        {
            var symbols = TorchSharpSymbols.TryCreate(start.Compilation);
            if (symbols?.ChunkedAttentionAttribute is null)
            {
                return; // no TorchSharp, or no runtime to host the fix: nothing is reported
            }

            var recognizer = AttentionChainRecognizer.For(start.Compilation, start.CancellationToken);
            if (recognizer is null)
            {
                return;
            }

            var state = new CompilationState(symbols, recognizer, WrapperHostFacts.For(start.Compilation, start.CancellationToken), start.Options);
            start.RegisterOperationAction(state.AnalyzeInvocation, OperationKind.Invocation);
        });
    }

    /// <summary>The human-readable list of steps in the message (<c>matmul, scale, mask, softmax, dropout</c>).</summary>
    internal static string Describe(AttentionChain chain)
    {
        var parts = new List<string>();
        foreach (var step in chain.Steps)
        {
            var text = step switch
            {
                "scores:matmul" => "matmul",
                "scores:bmm" => "bmm",
                "prescale" => "scaled query",
                "scale" or "scale:default" => "scale",
                "mask:additive" or "mask:additive?" => "additive mask",
                "mask:boolean" or "mask:boolean?" => "masked_fill",
                "mask:finitefill" => "masked_fill",
                "softmax:upcast" => "fp32 softmax",
                "cast" => null,
                "dropout:module" or "dropout:functional" => "dropout",
                _ => step,
            };
            if (text is not null)
            {
                parts.Add(text);
            }
        }

        return string.Join(", ", parts);
    }

    private sealed class CompilationState
    {
        private readonly TorchSharpSymbols _symbols;
        private readonly AttentionChainRecognizer _recognizer;
        private readonly WrapperHostFacts _host;
        private readonly AnalyzerOptions _options;
        private readonly ConcurrentDictionary<INamedTypeSymbol, bool> _processorCache = new(SymbolEqualityComparer.Default);
        private readonly ConcurrentDictionary<SyntaxTree, bool> _generatedTrees = new();

        public CompilationState(TorchSharpSymbols symbols, AttentionChainRecognizer recognizer, WrapperHostFacts host, AnalyzerOptions options)
        {
            _symbols = symbols;
            _recognizer = recognizer;
            _host = host;
            _options = options;
        }

        public void AnalyzeInvocation(OperationAnalysisContext context)
        {
            var invocation = (IInvocationOperation)context.Operation;
            if (!_recognizer.IsCandidate(invocation) || IsGenerated(invocation.Syntax.SyntaxTree, context.ContainingSymbol, context.CancellationToken))
            {
                return;
            }

            // Reported only where the fix is offered: the wrapper rulebook decides (once, for analyzer and fixer)
            // whether the type can host the generated wrapper; top-level statements cannot.
            var type = WrapperHostFacts.HostCandidate(context.ContainingSymbol);
            if (type is null || _host.Decide(type, _options, context.CancellationToken) != WrapperHost.Possible)
            {
                return;
            }

            var analysis = _recognizer.Analyze(invocation, context.CancellationToken);
            if (analysis.Chain is not { } chain)
            {
                return;
            }

            var descriptor = IsProcessor(type)
                ? DiagnosticDescriptors.HandWrittenInProcessor
                : DiagnosticDescriptors.HandWrittenOutsideProcessor;
            var properties = FixProperties.ForHost(type).Add(StepsProperty, chain.Summary);

            // Stable instances, so that two analysis passes produce message arguments that compare equal.
            context.ReportDiagnostic(Diagnostic.Create(
                descriptor,
                NameLocation(invocation),
                properties,
                DiagnosticArguments.Stable("'" + type.Name + "'"),
                DiagnosticArguments.Stable(Describe(chain))));
        }

        // What Roslyn's own filter treats as generated: a generated file (name, header, .editorconfig),
        // or a member or containing type marked [GeneratedCode].
        private bool IsGenerated(SyntaxTree tree, ISymbol containingSymbol, System.Threading.CancellationToken cancellationToken)
        {
            if (_generatedTrees.GetOrAdd(tree, t => GeneratedFileDetection.IsGeneratedFile(t, _options, cancellationToken)))
            {
                return true;
            }

            for (ISymbol? current = containingSymbol; current is not null and not INamespaceSymbol; current = current.ContainingSymbol)
            {
                if (_host.GeneratedCode.IsOn(current))
                {
                    return true;
                }
            }

            return false;
        }

        private bool IsProcessor(INamedTypeSymbol type) =>
            _processorCache.GetOrAdd(type, t => AttentionProcessorRules.IsAttentionProcessor(t, _symbols));

        private static Location NameLocation(IInvocationOperation invocation) =>
            invocation.Syntax is InvocationExpressionSyntax { Expression: var expression }
                ? expression switch
                {
                    MemberAccessExpressionSyntax memberAccess => memberAccess.Name.GetLocation(),
                    SimpleNameSyntax name => name.GetLocation(),
                    _ => expression.GetLocation(),
                }
                : invocation.Syntax.GetLocation();
    }
}
