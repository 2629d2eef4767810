using System;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// The robustness tests are only as good as the harness's ability to see a failure: here stand-in
/// components that throw, or emit broken code, must each be reported by <see cref="RoslynPipeline"/>.
/// </summary>
public sealed class HarnessSelfTests
{
    private const string Source = """
        using static TorchSharp.torch;

        class SelfAttention
        {
            Tensor A(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
        }

        [ChunkedAttention.ChunkedAttention]
        partial class Marked
        {
        }
        """;

    [Fact]
    public async Task An_analyzer_exception_is_reported()
    {
        var components = PipelineComponents.Product with
        {
            Analyzers = PipelineComponents.Product.Analyzers.Add(new ThrowingAnalyzer()),
        };

        var failures = await RunAsync(components);

        Assert.Contains(failures, f => f.Contains("ThrowingAnalyzer threw", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_generator_exception_is_reported()
    {
        var failures = await RunAsync(PipelineComponents.Product with { Generator = new StandInGenerator(source: null) });

        Assert.Contains(failures, f => f.StartsWith("generator threw", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("CS8785", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Generated_code_that_does_not_parse_is_reported()
    {
        var failures = await RunAsync(PipelineComponents.Product with { Generator = new StandInGenerator(source: "partial class {") });

        Assert.Contains(failures, f => f.StartsWith("generated Broken.g.cs does not parse", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Generated_code_that_needs_a_newer_language_version_is_reported()
    {
        var generator = new StandInGenerator(source: "#nullable enable\nclass Generated { string? Name; }\n");

        var failures = await RunAsync(PipelineComponents.Product with { Generator = generator }, LanguageVersion.CSharp7_3);

        Assert.Contains(failures, f => f.StartsWith("generated Broken.g.cs needs a newer language version", StringComparison.Ordinal) && f.Contains("CS8370", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_code_fix_that_throws_is_reported()
    {
        var failures = await RunAsync(PipelineComponents.Product with { Fixers = ImmutableArray.Create<CodeFixProvider>(new ThrowingFix()) });

        Assert.Contains(failures, f => f.Contains("computing the fix threw", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(LanguageVersion.CSharp12)]
    [InlineData(LanguageVersion.CSharp7_3)]
    public async Task The_product_passes_on_the_same_input(LanguageVersion version)
    {
        Assert.Empty(await RunAsync(PipelineComponents.Product, version));
    }

    private static async Task<System.Collections.Generic.IReadOnlyList<string>> RunAsync(
        PipelineComponents components, LanguageVersion version = LanguageVersion.CSharp12) =>
        await RoslynPipeline.RunAsync(
            new[] { new SourceFile("/0/Input.cs", Source) }, ReferenceSet.Full, version, new PipelineStats(), maxFixesPerCase: 2, CancellationToken.None, components);

#pragma warning disable RS1025, RS1026, RS1036, RS2008 // a deliberately broken stand-in, not a shipped rule
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    private sealed class ThrowingAnalyzer : DiagnosticAnalyzer
    {
        private static readonly DiagnosticDescriptor Rule = new("TEST001", "t", "t", "t", DiagnosticSeverity.Warning, true);

        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

        public override void Initialize(AnalysisContext context) =>
            context.RegisterSyntaxNodeAction(_ => throw new InvalidOperationException("boom"), SyntaxKind.ClassDeclaration);
    }
#pragma warning restore RS1025, RS1026, RS1036, RS2008

    /// <summary>Throws from its output step (<paramref name="source"/> null), or adds <paramref name="source"/> as Broken.g.cs.</summary>
    private sealed class StandInGenerator : IIncrementalGenerator
    {
        private readonly string? _source;

        public StandInGenerator(string? source) => _source = source;

        public void Initialize(IncrementalGeneratorInitializationContext context) =>
            context.RegisterSourceOutput(context.CompilationProvider, (production, _) =>
            {
                if (_source is null)
                {
                    throw new InvalidOperationException("boom");
                }

                production.AddSource("Broken.g.cs", _source);
            });
    }

    private sealed class ThrowingFix : CodeFixProvider
    {
        public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create("SDPA001");

        public override FixAllProvider? GetFixAllProvider() => null;

        public override Task RegisterCodeFixesAsync(CodeFixContext context)
        {
            context.RegisterCodeFix(
                CodeAction.Create("Throw", _ => Task.FromException<Solution>(new InvalidOperationException("boom")), "Throw"),
                context.Diagnostics.First());
            return Task.CompletedTask;
        }
    }
}
