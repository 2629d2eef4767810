using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>What the robustness runs did, counted across threads, for the figures in the test output.</summary>
internal sealed class PipelineStats
{
    private readonly ConcurrentDictionary<string, int> _diagnosticsById = new();
    private long _cases;
    private long _files;
    private long _lines;
    private long _characters;
    private long _generatedSources;
    private long _fixesOffered;
    private long _fixesComputed;
    private long _fixAllComputed;
    private long _fixesApplied;
    private long _failures;

    public long Cases => Interlocked.Read(ref _cases);

    public long Files => Interlocked.Read(ref _files);

    public long Lines => Interlocked.Read(ref _lines);

    public long Failures => Interlocked.Read(ref _failures);

    public long Diagnostics => _diagnosticsById.Values.Sum(v => (long)v);

    public void AddCase(IReadOnlyList<SourceFile> files)
    {
        Interlocked.Increment(ref _cases);
        Interlocked.Add(ref _files, files.Count);
        foreach (var file in files)
        {
            Interlocked.Add(ref _lines, file.Text.Count(c => c == '\n') + 1);
            Interlocked.Add(ref _characters, file.Text.Length);
        }
    }

    public void AddDiagnostics(IEnumerable<Diagnostic> diagnostics)
    {
        foreach (var diagnostic in diagnostics)
        {
            _diagnosticsById.AddOrUpdate(diagnostic.Id, 1, (_, count) => count + 1);
        }
    }

    public void AddGeneratedSource() => Interlocked.Increment(ref _generatedSources);

    public void AddFixOffered() => Interlocked.Increment(ref _fixesOffered);

    public void AddFixComputed() => Interlocked.Increment(ref _fixesComputed);

    public void AddFixAllComputed() => Interlocked.Increment(ref _fixAllComputed);

    public void AddFixApplied() => Interlocked.Increment(ref _fixesApplied);

    public void AddFailures(int count) => Interlocked.Add(ref _failures, count);

    /// <summary>One paragraph of figures.</summary>
    public string Describe()
    {
        var byId = string.Join(", ", _diagnosticsById.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"));
        return $"cases: {Cases}, files: {Files}, lines: {Lines}, characters: {Interlocked.Read(ref _characters)}\n"
            + $"analyzer diagnostics: {Diagnostics} ({(byId.Length == 0 ? "none" : byId)})\n"
            + $"generated files: {Interlocked.Read(ref _generatedSources)}\n"
            + $"code fixes offered: {Interlocked.Read(ref _fixesOffered)}, computed: {Interlocked.Read(ref _fixesComputed)}, "
            + $"Fix All computed: {Interlocked.Read(ref _fixAllComputed)}, applied to a workspace: {Interlocked.Read(ref _fixesApplied)}\n"
            + $"failures: {Failures}";
    }
}
