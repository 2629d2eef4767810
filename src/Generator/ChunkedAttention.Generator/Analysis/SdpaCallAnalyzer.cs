using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using ChunkedAttention.Generator.Model;
using ChunkedAttention.Generator.Rules;
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
/// (the call throws at run time) and the fix is the same. Whether the fix applies is decided here, once, by
/// <see cref="WrapperHostRules"/>: the message says so, and only then does the diagnostic carry
/// <see cref="FixProperties.HostType"/>, which the fixer acts on.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class SdpaCallAnalyzer : DiagnosticAnalyzer
{
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

            var state = new CompilationState(symbols, WrapperHostFacts.For(start.Compilation, start.CancellationToken));
            start.RegisterOperationAction(state.AnalyzeInvocation, OperationKind.Invocation);
        });
    }

    private sealed class CompilationState
    {
        private readonly TorchSharpSymbols _symbols;
        private readonly WrapperHostFacts _host;
        private readonly ConcurrentDictionary<INamedTypeSymbol, bool> _processorCache = new(SymbolEqualityComparer.Default);

        public CompilationState(TorchSharpSymbols symbols, WrapperHostFacts host)
        {
            _symbols = symbols;
            _host = host;
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

            // Top-level statements have a synthesized containing type, which cannot host the wrapper.
            var hostCandidate = WrapperHostFacts.HostCandidate(context.ContainingSymbol);
            var host = _host.Decide(hostCandidate, context.Options, context.CancellationToken);
            var properties = host == WrapperHost.Possible ? FixProperties.ForHost(hostCandidate!) : null;

            if (PassesCausalAndMask(invocation))
            {
                // Asserted to throw (Assert.Throws(() => ...)): no SDPA004, and no SDPA001/SDPA005 whose
                // fix would make the asserted exception go away.
                if (!ExpectedThrowContext.Contains(invocation))
                {
                    var causalRemedy = host == WrapperHost.Possible
                        ? DiagnosticDescriptors.CausalWithMaskRemedy
                        : Describe(host, hostCandidate, context).Remedy;
                    context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.CausalWithMask, location, properties, causalRemedy));
                }

                return;
            }

            var descriptor = containingType is not null && IsAttentionProcessor(containingType)
                ? DiagnosticDescriptors.DirectCallInProcessor
                : DiagnosticDescriptors.DirectCallOutsideProcessor;
            var (place, remedy) = Describe(host, hostCandidate, context);
            context.ReportDiagnostic(Diagnostic.Create(descriptor, location, properties, place, remedy));
        }

        // Where the call is and what to do about it; the fix is promised only where it is offered. Every
        // argument is a stable instance, so two passes over the same code report equal diagnostics.
        private (string Place, string Remedy) Describe(WrapperHost host, INamedTypeSymbol? type, OperationAnalysisContext context)
        {
            if (type is null)
            {
                return (DiagnosticArguments.Stable("top-level statements"), DiagnosticDescriptors.MoveCallRemedy);
            }

            var place = host == WrapperHost.NotClassOrStruct
                ? $"{type.TypeKind.ToString().ToLowerInvariant()} '{type.Name}'"
                : $"'{type.Name}'";
            var remedy = host switch
            {
                WrapperHost.Possible => Format(DiagnosticDescriptors.UseChunkedAttentionRemedy, type.Name),
                WrapperHost.FileLocal => DiagnosticDescriptors.FileLocalRemedy,
                WrapperHost.MemberNameTaken => Format(
                    DiagnosticDescriptors.MemberNameTakenRemedy,
                    type.Name,
                    _host.HandWrittenGeneratedNameMembers(type, context.Options, context.CancellationToken).First().Member.Name),
                WrapperHost.RuntimeNotReferenced => Format(DiagnosticDescriptors.RuntimeNotReferencedRemedy, type.Name),
                WrapperHost.SdpaNotRestatable => Format(DiagnosticDescriptors.SdpaNotRestatableRemedy, _host.SdpaNotRestatable!),
                _ => DiagnosticDescriptors.MoveCallRemedy,
            };
            return (DiagnosticArguments.Stable(place), DiagnosticArguments.Stable(remedy));
        }

        private static string Format(string format, params object[] arguments) =>
            string.Format(CultureInfo.InvariantCulture, format, arguments);

        private bool IsAttentionProcessor(INamedTypeSymbol type) =>
            _processorCache.GetOrAdd(type, t => AttentionProcessorRules.IsAttentionProcessor(t, _symbols));

        // Generated code is excluded by ConfigureGeneratedCodeAnalysis; this also covers a wrapper whose
        // file a build does not recognise as generated (e.g. emitted to disk and compiled as a normal file).
        private bool IsInsideGeneratedWrapper(ISymbol containingSymbol) =>
            containingSymbol is IMethodSymbol { Name: WellKnownNames.GeneratedMethodName } method && _host.GeneratedCode.IsOn(method);
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
            switch (argument.Parameter is { } parameter ? SdpaParameterNames.RoleOf(parameter.Name) : SdpaParameterRole.Unknown)
            {
                case SdpaParameterRole.Causal:
                    causal = argument.Value.ConstantValue is { HasValue: true, Value: true };
                    break;
                case SdpaParameterRole.Mask:
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
