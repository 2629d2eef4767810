using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Diagnostics.Telemetry;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>How the analyzers register: concurrently, and with no work at all where there is nothing to find.</summary>
public class AnalyzerConfigurationTests
{
    private const string Source = """
        using ChunkedAttention;

        [ChunkedAttention]
        partial class SelfAttention
        {
            object F(object q) => q;
        }
        """;

    [Fact]
    public async Task Without_TorchSharp_the_call_analyzer_registers_no_operation_action()
    {
        var torch = RoslynTestSetup.ProductReferences[0];
        var (with, without) = await TelemetryAsync(new SdpaCallAnalyzer(), dropped: torch);

        Assert.Equal(1, with.OperationActionsCount);
        Assert.True(with.Concurrent);
        Assert.Equal(1, without.CompilationStartActionsCount);
        Assert.Equal(0, without.OperationActionsCount);
    }

    [Fact]
    public async Task Without_the_runtime_the_attribute_analyzer_registers_no_symbol_action()
    {
        var runtime = RoslynTestSetup.ProductReferences[1];
        var (with, without) = await TelemetryAsync(new ChunkedAttentionAttributeAnalyzer(), dropped: runtime);

        Assert.Equal(1, with.SymbolActionsCount);
        Assert.True(with.Concurrent);
        Assert.Equal(0, without.SymbolActionsCount);
    }

    /// <summary>Telemetry of a compilation with every product reference, and of one without <paramref name="dropped"/>.</summary>
    private static async Task<(AnalyzerTelemetryInfo With, AnalyzerTelemetryInfo Without)> TelemetryAsync(DiagnosticAnalyzer analyzer, MetadataReference dropped)
    {
        var framework = await RoslynTestSetup.ReferenceAssemblies.ResolveAsync(LanguageNames.CSharp, CancellationToken.None);
        var all = framework.AddRange(RoslynTestSetup.ProductReferences);
        return (await RunAsync(analyzer, all), await RunAsync(analyzer, all.Remove(dropped)));
    }

    private static async Task<AnalyzerTelemetryInfo> RunAsync(DiagnosticAnalyzer analyzer, ImmutableArray<MetadataReference> references)
    {
        var compilation = CSharpCompilation.Create(
            "Telemetry",
            new[] { CSharpSyntaxTree.ParseText(Source) },
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var withAnalyzers = compilation.WithAnalyzers(
            ImmutableArray.Create(analyzer),
            new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
        await withAnalyzers.GetAnalyzerDiagnosticsAsync();
        return await withAnalyzers.GetAnalyzerTelemetryInfoAsync(analyzer, CancellationToken.None);
    }
}
