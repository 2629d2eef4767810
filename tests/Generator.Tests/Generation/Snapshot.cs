using System;
using System.IO;
using ChunkedAttention.Generator.Generation;
using ChunkedAttention.Generator.Tests.Analysis;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Expected generator output checked into <c>Generation/Snapshots</c> and compared in full.
/// Set <c>UPDATE_SNAPSHOTS=1</c> to rewrite the files from the current output (then review the diff).
/// </summary>
internal static class Snapshot
{
    /// <summary>Stands for the generator's version in snapshot files, so a version bump does not touch them.</summary>
    public const string VersionToken = "{GeneratorVersion}";

    private static readonly bool Update =
        string.Equals(Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS"), "1", StringComparison.Ordinal);

    /// <summary>Compares <paramref name="actual"/> with the snapshot <paramref name="name"/>.</summary>
    public static void Match(string name, string actual)
    {
        // From the repository root, not [CallerFilePath]: CI builds are deterministic and map source paths to /_/.
        string directory = Path.Combine(RoslynTestSetup.RepositoryRoot, "tests", "Generator.Tests", "Generation", "Snapshots");
        string path = Path.Combine(directory, name + ".g.cs.txt");
        string scrubbed = Scrub(actual);

        if (Update)
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(path, scrubbed);
            return;
        }

        Assert.True(File.Exists(path), $"Snapshot {path} is missing; run the tests with UPDATE_SNAPSHOTS=1 to create it.");
        string expected = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Equal(expected, scrubbed);
    }

    private static string Scrub(string source) =>
        source.Replace(
            "\"ChunkedAttention.Generator\", \"" + Emitter.GeneratorVersion + "\"",
            "\"ChunkedAttention.Generator\", \"" + VersionToken + "\"",
            StringComparison.Ordinal);
}
