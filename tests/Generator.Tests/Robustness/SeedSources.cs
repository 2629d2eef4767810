using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using ChunkedAttention.Generator.Tests.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>A named set of source files compiled together as one project.</summary>
internal sealed record SeedCase(string Name, IReadOnlyList<SourceFile> Files)
{
    public override string ToString() => Name;
}

/// <summary>
/// Where robustness inputs come from: the hand-written corpus of TorchSharp attention code
/// (Robustness/Corpus), the repository's own C# (samples, product, tests), the source snippets the
/// other generator tests compile, and the C# templates shipped with the installed .NET SDK.
/// </summary>
internal static class SeedSources
{
    /// <summary>Separates the files of one corpus case: a line <c>// ==== file: Name.cs</c>.</summary>
    private static readonly Regex FileMarker = new(@"^// ==== file: (?<name>\S+)\s*$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

    /// <summary>Markup of Microsoft.CodeAnalysis.Testing (<c>{|SDPA001:x|}</c>, <c>[|x|]</c>, <c>{|#0:x|}</c>, <c>$$</c>).</summary>
    private static readonly Regex TestMarkup = new(@"\{\|[^:|]*:|\|\}|\[\||\|\]|\$\$", RegexOptions.CultureInvariant);

    private static readonly string[] SkippedDirectories = { "bin", "obj", ".git", ".vs", "node_modules" };

    public static string RepositoryRoot => RoslynTestSetup.RepositoryRoot;

    public static string CorpusDirectory => Path.Combine(RepositoryRoot, "tests", "Generator.Tests", "Robustness", "Corpus");

    /// <summary>The hand-written corpus, one case per file (split into several files where the file says so).</summary>
    public static IReadOnlyList<SeedCase> Corpus() =>
        Directory.EnumerateFiles(CorpusDirectory, "*.cs", SearchOption.AllDirectories)
            .OrderBy(path => path, StringComparer.Ordinal)
            .Select(path => new SeedCase("corpus/" + Path.GetFileName(path), SplitFiles(path, File.ReadAllText(path))))
            .ToList();

    /// <summary>Each sample project under samples/, all its files together.</summary>
    public static IReadOnlyList<SeedCase> Samples() =>
        ProjectCases(Path.Combine(RepositoryRoot, "samples")).ToList();

    /// <summary>
    /// Every C# file of the repository, grouped by the project that compiles it (the corpus,
    /// which no project compiles, is left to <see cref="Corpus"/>).
    /// </summary>
    public static IReadOnlyList<SeedCase> Repository() => ProjectCases(RepositoryRoot).ToList();

    /// <summary>
    /// The C# sources the other tests of this project compile: every string literal in them that
    /// declares a type or calls SDPA, with the testing framework's markup removed.
    /// </summary>
    public static IReadOnlyList<SeedCase> TestInputs()
    {
        var testsDirectory = Path.Combine(RepositoryRoot, "tests", "Generator.Tests");
        var seeds = new List<SeedCase>();
        foreach (var path in EnumerateCSharpFiles(testsDirectory).Where(p => !p.Contains($"{Path.DirectorySeparatorChar}Robustness{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var root = CSharpSyntaxTree.ParseText(File.ReadAllText(path)).GetRoot();
            var index = 0;
            foreach (var literal in root.DescendantNodes().Where(n => n is LiteralExpressionSyntax or InterpolatedStringExpressionSyntax))
            {
                var text = literal switch
                {
                    LiteralExpressionSyntax l when l.IsKind(SyntaxKind.StringLiteralExpression) => l.Token.ValueText,

                    // Interpolation holes become empty: the rest is still the shape of a real file.
                    InterpolatedStringExpressionSyntax s => string.Concat(s.Contents.OfType<InterpolatedStringTextSyntax>().Select(t => t.TextToken.ValueText)),
                    _ => null,
                };
                if (text is null || text.Length < 30 || !LooksLikeCSharpSource(text))
                {
                    continue;
                }

                seeds.Add(new SeedCase(
                    $"test-input/{Path.GetFileNameWithoutExtension(path)}#{index++}",
                    new[] { new SourceFile("/0/Test0.cs", TestMarkup.Replace(text, string.Empty)) }));
            }
        }

        return seeds;
    }

    /// <summary>
    /// The C# files inside the template packages of the installed .NET SDK (project and item
    /// templates: console, web, worker, WPF, WinForms…), one case per template folder.
    /// </summary>
    public static IReadOnlyList<SeedCase> SdkTemplates()
    {
        var dotnetRoot = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(typeof(object).Assembly.Location))));
        var templates = dotnetRoot is null ? null : Path.Combine(dotnetRoot, "templates");
        if (templates is null || !Directory.Exists(templates))
        {
            return Array.Empty<SeedCase>();
        }

        var cases = new List<SeedCase>();
        foreach (var package in Directory.EnumerateFiles(templates, "*.nupkg", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal))
        {
            using var zip = ZipFile.OpenRead(package);
            var groups = zip.Entries
                .Where(e => e.FullName.EndsWith(".cs", StringComparison.OrdinalIgnoreCase))
                .GroupBy(e => string.Join("/", e.FullName.Split('/').Take(2)))
                .OrderBy(g => g.Key, StringComparer.Ordinal);
            foreach (var group in groups)
            {
                var files = group.OrderBy(e => e.FullName, StringComparer.Ordinal).Select(e =>
                {
                    using var reader = new StreamReader(e.Open(), Encoding.UTF8);
                    return new SourceFile("/sdk/" + e.FullName, reader.ReadToEnd());
                }).ToList();
                cases.Add(new SeedCase($"sdk/{Path.GetFileNameWithoutExtension(package)}/{group.Key}", files));
            }
        }

        return cases;
    }

    /// <summary>Splits a corpus file at its <c>// ==== file:</c> markers.</summary>
    public static IReadOnlyList<SourceFile> SplitFiles(string path, string text)
    {
        var markers = FileMarker.Matches(text);
        if (markers.Count == 0)
        {
            return new[] { new SourceFile(path, text) };
        }

        var files = new List<SourceFile>();
        var directory = Path.GetDirectoryName(path) ?? string.Empty;
        var preamble = text.Substring(0, markers[0].Index);
        if (preamble.Trim().Length > 0)
        {
            files.Add(new SourceFile(path, preamble));
        }

        for (var i = 0; i < markers.Count; i++)
        {
            var start = markers[i].Index + markers[i].Length;
            var end = i + 1 < markers.Count ? markers[i + 1].Index : text.Length;
            files.Add(new SourceFile(Path.Combine(directory, markers[i].Groups["name"].Value), text.Substring(start, end - start)));
        }

        return files;
    }

    private static bool LooksLikeCSharpSource(string text) =>
        text.Contains("scaled_dot_product_attention", StringComparison.Ordinal)
        || Regex.IsMatch(text, @"\b(class|struct|record|interface)\s+\w+", RegexOptions.CultureInvariant);

    private static IEnumerable<SeedCase> ProjectCases(string directory)
    {
        var corpus = CorpusDirectory + Path.DirectorySeparatorChar;
        return EnumerateCSharpFiles(directory)
            .Where(path => !path.StartsWith(corpus, StringComparison.Ordinal))
            .GroupBy(ProjectDirectory)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new SeedCase(
                "repo/" + Path.GetRelativePath(RepositoryRoot, g.Key).Replace('\\', '/'),
                g.OrderBy(p => p, StringComparer.Ordinal).Select(p => new SourceFile(p, File.ReadAllText(p))).ToList()));
    }

    private static string ProjectDirectory(string file)
    {
        for (var directory = Path.GetDirectoryName(file); directory is not null && directory.Length >= RepositoryRoot.Length; directory = Path.GetDirectoryName(directory))
        {
            if (Directory.EnumerateFiles(directory, "*.csproj").Any())
            {
                return directory;
            }
        }

        return Path.GetDirectoryName(file)!;
    }

    private static IEnumerable<string> EnumerateCSharpFiles(string directory)
    {
        foreach (var file in Directory.EnumerateFiles(directory, "*.cs").OrderBy(p => p, StringComparer.Ordinal))
        {
            yield return file;
        }

        foreach (var child in Directory.EnumerateDirectories(directory).OrderBy(p => p, StringComparer.Ordinal))
        {
            if (!SkippedDirectories.Contains(Path.GetFileName(child), StringComparer.OrdinalIgnoreCase))
            {
                foreach (var file in EnumerateCSharpFiles(child))
                {
                    yield return file;
                }
            }
        }
    }
}
