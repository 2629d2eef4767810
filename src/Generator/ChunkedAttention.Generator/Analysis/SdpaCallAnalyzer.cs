using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Finds direct calls to TorchSharp's <c>torch.nn.functional.scaled_dot_product_attention</c>
/// (SDPA001 inside attention processors, SDPA005 elsewhere, SDPA004 when the call is bound to throw).
/// </summary>
/// <remarks>
/// One diagnostic per call: SDPA004 replaces SDPA001/SDPA005 because it is the more urgent finding
/// (the call throws at run time) and the fix is the same.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class SdpaCallAnalyzer : DiagnosticAnalyzer
{
    private const string AttnMaskParameter = "attn_mask";

    // TorchSharp 0.107 spells it "is_casual"; accept the correct spelling too in case a later version fixes it.
    private const string IsCasualParameter = "is_casual";
    private const string IsCausalParameter = "is_causal";

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.DirectCallInProcessor,
        DiagnosticDescriptors.CausalWithMask,
        DiagnosticDescriptors.DirectCallOutsideProcessor);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(static start =>
        {
            var symbols = TorchSharpSymbols.TryCreate(start.Compilation);
            if (symbols is null)
            {
                return; // no TorchSharp: no call can bind to its SDPA
            }

            var state = new CompilationState(symbols, GeneratedCodeMark.For(start.Compilation));
            start.RegisterOperationAction(state.AnalyzeInvocation, OperationKind.Invocation);
        });
    }

    private sealed class CompilationState
    {
        private readonly TorchSharpSymbols _symbols;
        private readonly GeneratedCodeMark _generatedCode;
        private readonly ConcurrentDictionary<INamedTypeSymbol, bool> _processorCache = new(SymbolEqualityComparer.Default);

        public CompilationState(TorchSharpSymbols symbols, GeneratedCodeMark generatedCode)
        {
            _symbols = symbols;
            _generatedCode = generatedCode;
        }

        public void AnalyzeInvocation(OperationAnalysisContext context)
        {
            var invocation = (IInvocationOperation)context.Operation;
            if (!_symbols.IsScaledDotProductAttention(invocation.TargetMethod) || IsInsideGeneratedWrapper(context.ContainingSymbol))
            {
                return;
            }

            var containingType = FindContainingType(context.ContainingSymbol);
            var location = GetNameLocation(invocation);

            if (PassesCausalAndMask(invocation))
            {
                // Asserted to throw (Assert.Throws(() => ...)): no SDPA004, and no SDPA001/SDPA005 whose
                // fix would make the asserted exception go away.
                if (!ExpectedThrowContext.Contains(invocation))
                {
                    context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.CausalWithMask, location));
                }

                return;
            }

            var descriptor = containingType is not null && IsAttentionProcessor(containingType)
                ? DiagnosticDescriptors.DirectCallInProcessor
                : DiagnosticDescriptors.DirectCallOutsideProcessor;
            var (place, remedy) = Describe(context.ContainingSymbol, containingType);
            context.ReportDiagnostic(Diagnostic.Create(descriptor, location, place, remedy));
        }

        // Top-level statements and interfaces cannot host the generated wrapper, so the message does
        // not promise the code fix there (the fix is not offered either).
        private static (string Place, string Remedy) Describe(ISymbol containingSymbol, INamedTypeSymbol? type)
        {
            if (type is null || containingSymbol is IMethodSymbol { Name: WellKnownMemberNames.TopLevelStatementsEntryPointMethodName })
            {
                return ("top-level statements", DiagnosticDescriptors.MoveCallRemedy);
            }

            if (type.TypeKind is not (TypeKind.Class or TypeKind.Struct))
            {
                return ($"{type.TypeKind.ToString().ToLowerInvariant()} '{type.Name}'", DiagnosticDescriptors.MoveCallRemedy);
            }

            return ($"'{type.Name}'", string.Format(CultureInfo.InvariantCulture, DiagnosticDescriptors.UseChunkedAttentionRemedy, type.Name));
        }

        private bool IsAttentionProcessor(INamedTypeSymbol type) =>
            _processorCache.GetOrAdd(type, t => AttentionProcessorRules.IsAttentionProcessor(t, _symbols));

        // Generated code is excluded by ConfigureGeneratedCodeAnalysis; this also covers a wrapper whose
        // file a build does not recognise as generated (e.g. emitted to disk and compiled as a normal file).
        private bool IsInsideGeneratedWrapper(ISymbol containingSymbol) =>
            containingSymbol is IMethodSymbol { Name: WellKnownNames.GeneratedMethodName } method && _generatedCode.IsOn(method);
    }

    private static INamedTypeSymbol? FindContainingType(ISymbol symbol)
    {
        for (ISymbol? current = symbol; current is not null; current = current.ContainingSymbol)
        {
            if (current is INamedTypeSymbol type)
            {
                return type;
            }
        }

        return null;
    }

    /// <summary>SDPA004: only what is provable at compile time, so no false alarms.</summary>
    private static bool PassesCausalAndMask(IInvocationOperation invocation)
    {
        var causal = false;
        var mask = false;
        foreach (var argument in invocation.Arguments)
        {
            switch (argument.Parameter?.Name)
            {
                case IsCasualParameter:
                case IsCausalParameter:
                    causal = argument.Value.ConstantValue is { HasValue: true, Value: true };
                    break;
                case AttnMaskParameter:
                    mask = !IsNullConstant(argument.Value);
                    break;
            }
        }

        return causal && mask;
    }

    private static bool IsNullConstant(IOperation value)
    {
        while (true)
        {
            if (value.ConstantValue is { HasValue: true, Value: null })
            {
                return true;
            }

            if (value is IConversionOperation conversion)
            {
                value = conversion.Operand;
                continue;
            }

            return value is IDefaultValueOperation;
        }
    }

    /// <summary>Squiggle the method name, not the whole (often multi-line) call.</summary>
    private static Location GetNameLocation(IInvocationOperation invocation)
    {
        if (invocation.Syntax is InvocationExpressionSyntax call)
        {
            return call.Expression switch
            {
                MemberAccessExpressionSyntax memberAccess => memberAccess.Name.GetLocation(),
                SimpleNameSyntax name => name.GetLocation(),
                _ => call.Expression.GetLocation(),
            };
        }

        return invocation.Syntax.GetLocation();
    }
}
