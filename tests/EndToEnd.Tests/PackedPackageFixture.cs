using System;
using System.IO;

namespace ChunkedAttention.EndToEnd.Tests;

/// <summary>
/// Packs the ChunkedAttention package once per test run into a private local feed, under a version
/// nobody else uses (the NuGet cache keys packages by id and version, so a reused version would
/// serve stale bits), and removes the feed and that cache entry afterwards.
/// </summary>
public sealed class PackedPackageFixture : IDisposable
{
    public PackedPackageFixture()
    {
        RepositoryRoot = DotnetCli.RepositoryRoot();
        WorkRoot = Path.Combine(Path.GetTempPath(), "chunkedattention-e2e-" + Guid.NewGuid().ToString("N")[..12]);
        Feed = Path.Combine(WorkRoot, "feed");
        Directory.CreateDirectory(Feed);
        Version = $"0.0.0-e2e.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

        DotnetCli.Run(RepositoryRoot, null,
                "pack", Path.Combine(RepositoryRoot, "src", "Runtime", "ChunkedAttention.Runtime.csproj"),
                "-c", "Release", "-o", Feed, $"-p:Version={Version}")
            .ShouldSucceed("dotnet pack");
        PackagePath = Path.Combine(Feed, $"ChunkedAttention.{Version}.nupkg");
        if (!File.Exists(PackagePath))
            throw new InvalidOperationException($"dotnet pack did not produce {PackagePath}.");
    }

    public string RepositoryRoot { get; }
    public string WorkRoot { get; }
    public string Feed { get; }
    public string Version { get; }
    public string PackagePath { get; }

    public void Dispose()
    {
        TryDelete(WorkRoot);
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        TryDelete(Path.Combine(packages, "chunkedattention", Version.ToLowerInvariant()));
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; never fail a test run over cleanup.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
