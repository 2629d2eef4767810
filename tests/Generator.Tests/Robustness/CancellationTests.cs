using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>
/// The IDE cancels analysis and generation on every keystroke; a component that ignores the token
/// keeps a core busy for nothing. A cancelled token must stop the analyzers, the generator and the
/// fixes with <see cref="OperationCanceledException"/>, and promptly when it is cancelled mid-run.
/// </summary>
public sealed class CancellationTests
{
    // Generous for a loaded 2-core CI machine, yet far below what a component that ignores the token would take.
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(2);

    private readonly ITestOutputHelper _output;

    public CancellationTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Analyzers_with_a_cancelled_token_throw_OperationCanceledException()
    {
        var compilation = Compile(Workload(types: 20));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        var withAnalyzers = compilation.WithAnalyzers(RoslynPipeline.Analyzers, RoslynPipeline.AnalyzerOptions(FailOnException));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => withAnalyzers.GetAnalyzerDiagnosticsAsync(cancelled.Token));
    }

    [Fact]
    public void Generator_with_a_cancelled_token_throws_OperationCanceledException()
    {
        var compilation = Compile(Workload(types: 20));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        var driver = RoslynPipeline.CreateDriver((CSharpParseOptions)compilation.SyntaxTrees.First().Options);

        Assert.ThrowsAny<OperationCanceledException>(() => driver.RunGenerators(compilation, cancelled.Token));
    }

    [Fact]
    public async Task Analyzers_stop_promptly_when_cancelled_mid_run()
    {
        var (latency, full) = await CancelMidRunAsync(
            async (compilation, token) =>
            {
                var withAnalyzers = compilation.WithAnalyzers(RoslynPipeline.Analyzers, RoslynPipeline.AnalyzerOptions(FailOnException));
                await withAnalyzers.GetAnalyzerDiagnosticsAsync(token);
            });

        _output.WriteLine($"analyzers: full run {full.TotalMilliseconds:F0} ms, stopped {latency.TotalMilliseconds:F0} ms after cancellation");
        Assert.True(latency < Prompt, $"analyzers took {latency.TotalMilliseconds:F0} ms to stop after cancellation (full run {full.TotalMilliseconds:F0} ms)");
    }

    [Fact]
    public async Task Generator_stops_promptly_when_cancelled_mid_run()
    {
        var (latency, full) = await CancelMidRunAsync(
            (compilation, token) =>
            {
                var driver = RoslynPipeline.CreateDriver((CSharpParseOptions)compilation.SyntaxTrees.First().Options);
                driver.RunGenerators(compilation, token);
                return Task.CompletedTask;
            });

        _output.WriteLine($"generator: full run {full.TotalMilliseconds:F0} ms, stopped {latency.TotalMilliseconds:F0} ms after cancellation");
        Assert.True(latency < Prompt, $"generator took {latency.TotalMilliseconds:F0} ms to stop after cancellation (full run {full.TotalMilliseconds:F0} ms)");
    }

    [Fact]
    public async Task Code_fixes_with_a_cancelled_token_throw_OperationCanceledException()
    {
        var (workspace, project) = RoslynPipeline.CreateProject(
            new[] { new SourceFile("/0/Work.cs", Workload(types: 3)) }, ReferenceSet.Full, LanguageVersion.CSharp12);
        using (workspace)
        {
            var compilation = (await project.GetCompilationAsync())!;
            var diagnostics = await compilation
                .WithAnalyzers(RoslynPipeline.Analyzers, RoslynPipeline.AnalyzerOptions(FailOnException))
                .GetAnalyzerDiagnosticsAsync();
            var document = project.Documents.Single();

            // One call diagnostic and one chain (Use chunked attention), and one SDPA002 (Make partial) from the workload.
            foreach (var id in new[] { "SDPA001", "SDPA007", "SDPA002" })
            {
                var diagnostic = diagnostics.First(d => d.Id == id);
                var provider = RoslynPipeline.Fixers.Single(f => f.FixableDiagnosticIds.Contains(id));
                var actions = new List<CodeAction>();
                await provider.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (a, _) => actions.Add(a), CancellationToken.None));
                var action = Assert.Single(actions);

                using var cancelled = new CancellationTokenSource();
                cancelled.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => action.GetOperationsAsync(cancelled.Token));

                // Fix All, too: the action it returns stops on a cancelled token.
                var fixAll = provider.GetFixAllProvider()!;
                var context = new FixAllContext(
                    document,
                    provider,
                    FixAllScope.Solution,
                    action.EquivalenceKey,
                    provider.FixableDiagnosticIds,
                    new ListDiagnosticProvider(diagnostics),
                    CancellationToken.None);
                var fixAllAction = await fixAll.GetFixAsync(context);
                Assert.NotNull(fixAllAction);
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixAllAction!.GetOperationsAsync(cancelled.Token));
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="run"/> on fresh copies of a workload large enough that it does not
    /// finish before the cancellation lands (doubling it until it is), cancels part-way, and
    /// returns how long the run went on after the cancellation, and how long an uncancelled run took.
    /// </summary>
    private static async Task<(TimeSpan Latency, TimeSpan FullRun)> CancelMidRunAsync(Func<Compilation, CancellationToken, Task> run)
    {
        for (var types = 200; ; types *= 2)
        {
            var compilation = Compile(Workload(types));

            // Uncancelled baseline on a clone (a clone shares nothing bound, so both runs do the same work).
            var stopwatch = Stopwatch.StartNew();
            await run(compilation.Clone(), CancellationToken.None);
            var full = stopwatch.Elapsed;
            if (full < TimeSpan.FromMilliseconds(400) && types < 6400)
            {
                continue;
            }

            using var source = new CancellationTokenSource();
            var cancelledAt = TimeSpan.Zero;
            stopwatch.Restart();
            var task = Task.Run(() => run(compilation.Clone(), source.Token));
            await Task.Delay(full / 5);
            cancelledAt = stopwatch.Elapsed;
            source.Cancel();

            try
            {
                await task;
            }
            catch (OperationCanceledException)
            {
                return (stopwatch.Elapsed - cancelledAt, full);
            }

            // It beat the cancellation (a slow machine made the baseline look long): retry larger.
            if (types >= 6400)
            {
                throw new InvalidOperationException($"the run finished although cancelled after {cancelledAt.TotalMilliseconds:F0} ms; never threw OperationCanceledException");
            }
        }
    }

    private static CSharpCompilation Compile(string source) =>
        CSharpCompilation.Create(
            "CancellationWorkload",
            new[] { CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.CSharp12), path: "/0/Work.cs") },
            RoslynPipeline.References(ReferenceSet.Full),
            RoslynPipeline.CompilationOptions);

    /// <summary>
    /// Many attention types, each with direct SDPA calls in several members, hand-written attention
    /// and a [ChunkedAttention] target, so every analyzer and the generator have work in every type. The last type is not
    /// partial (an SDPA002 for the fix test).
    /// </summary>
    private static string Workload(int types)
    {
        var builder = new StringBuilder("using ChunkedAttention;\nusing TorchSharp;\nusing static TorchSharp.torch;\n\n");
        for (var i = 0; i < types; i++)
        {
            builder.Append($$"""
                namespace Work{{i % 17}}
                {
                    public sealed class Attention{{i}} : nn.Module
                    {
                        public Attention{{i}}() : base("a{{i}}") { }
                        public Tensor A(Tensor q, Tensor k, Tensor v) => nn.functional.scaled_dot_product_attention(q, k, v);
                        public Tensor B(Tensor q, Tensor k, Tensor v, Tensor m) => nn.functional.scaled_dot_product_attention(q, k, v, m, is_casual: true);
                        public Tensor C(Tensor q) { Tensor Local(Tensor x) => nn.functional.scaled_dot_product_attention(x, x, x); return Local(q); }
                        public Tensor D(Tensor q, Tensor k, Tensor v, Tensor? m)
                        {
                            var s = q.matmul(k.transpose(-2, -1)) / System.Math.Sqrt(q.size(-1));
                            if (m is not null) s = s + m;
                            return s.softmax(-1).matmul(v);
                        }
                    }

                    [ChunkedAttention(ChunkSize = {{64 + i}}, Devices = AttentionDevices.All)]
                    public {{(i == types - 1 ? string.Empty : "partial ")}}class Marked{{i}}
                    {
                        public Tensor A(Tensor q) => ChunkedScaledDotProductAttention(q, q, q);
                    }
                }

                """);
        }

        return builder.ToString();
    }

    private static void FailOnException(Exception exception, DiagnosticAnalyzer analyzer, Diagnostic diagnostic) =>
        throw new InvalidOperationException($"{analyzer.GetType().Name} threw", exception);

    private sealed class ListDiagnosticProvider : FixAllContext.DiagnosticProvider
    {
        private readonly IReadOnlyList<Diagnostic> _diagnostics;

        public ListDiagnosticProvider(IReadOnlyList<Diagnostic> diagnostics) => _diagnostics = diagnostics;

        public override async Task<IEnumerable<Diagnostic>> GetDocumentDiagnosticsAsync(Document document, CancellationToken cancellationToken)
        {
            var tree = await document.GetSyntaxTreeAsync(cancellationToken);
            return _diagnostics.Where(d => d.Location.SourceTree == tree);
        }

        public override Task<IEnumerable<Diagnostic>> GetProjectDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult(Enumerable.Empty<Diagnostic>());

        public override Task<IEnumerable<Diagnostic>> GetAllDiagnosticsAsync(Project project, CancellationToken cancellationToken) =>
            Task.FromResult<IEnumerable<Diagnostic>>(_diagnostics);
    }
}
