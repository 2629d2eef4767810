using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit;

namespace ChunkedAttention.EndToEnd.Tests;

/// <summary>
/// eng/RepositoryUrl.props derives ChunkedAttentionRepositoryUrl (package URLs, help links) from a clone's
/// origin remote, and from nothing else. One MSBuild run evaluates it for a set of fake clones.
/// </summary>
public sealed class RepositoryUrlTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "chunkedattention-url-" + Guid.NewGuid().ToString("N")[..12]);

    public static string BuildRepositoryUrl() =>
        typeof(RepositoryUrlTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "ChunkedAttentionRepositoryUrl").Value ?? string.Empty;

    [Fact]
    public void Origin_remote_becomes_an_https_url_without_credentials_and_nothing_else_does()
    {
        var cases = new Dictionary<string, (string Config, string Expected)>
        {
            ["scp"] = ("[core]\n\tbare = false\n[remote \"origin\"]\n\turl = git@github.com:owner/repo.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n", "https://github.com/owner/repo"),
            ["ssh"] = ("[remote \"upstream\"]\n\turl = https://github.com/other/up.git\n[remote \"origin\"]\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\turl = ssh://git@gitlab.example.com:2222/group/sub/repo.git\n", "https://gitlab.example.com/group/sub/repo"),
            ["credentials"] = ("[remote \"origin\"]\n\turl = https://x-access-token:SECRET@github.com/owner/repo.git/\n", "https://github.com/owner/repo"),
            ["https"] = ("[remote \"origin\"]\r\n\turl = https://github.com/owner/repo\r\n[branch \"main\"]\r\n\tremote = origin\r\n", "https://github.com/owner/repo"),
            ["pushurl"] = ("[remote \"origin\"]\n\tpushurl = git@github.com:me/fork.git\n\turl = git@github.com:owner/repo.git\n", "https://github.com/owner/repo"),
            ["no-origin"] = ("[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://github.com/other/up.git\n", ""),
            ["local-path"] = ("[remote \"origin\"]\n\turl = /srv/git/repo.git\n", ""),
        };
        foreach (var (name, (config, _)) in cases)
        {
            Directory.CreateDirectory(Path.Combine(_root, name, ".git"));
            File.WriteAllText(Path.Combine(_root, name, ".git", "config"), config);
        }

        // A worktree: .git is a file naming the git directory, whose commondir holds the shared config.
        Directory.CreateDirectory(Path.Combine(_root, "main", "worktrees", "wt"));
        Directory.CreateDirectory(Path.Combine(_root, "worktree"));
        File.WriteAllText(Path.Combine(_root, "worktree", ".git"), "gitdir: ../main/worktrees/wt\n");
        File.WriteAllText(Path.Combine(_root, "main", "worktrees", "wt", "commondir"), "../..\n");
        File.WriteAllText(Path.Combine(_root, "main", "config"), "[remote \"origin\"]\n\turl = git@github.com:owner/worktree.git\n");
        cases["worktree"] = (string.Empty, "https://github.com/owner/worktree");
        Directory.CreateDirectory(Path.Combine(_root, "no-git"));
        cases["no-git"] = (string.Empty, string.Empty);

        string props = Path.Combine(DotnetCli.RepositoryRoot(), "eng", "RepositoryUrl.props");
        string roots = string.Join(";", cases.Keys.Select(name => Path.Combine(_root, name) + Path.DirectorySeparatorChar));
        File.WriteAllText(Path.Combine(_root, "probe.proj"), $"""
            <Project>
              <Import Project="{props}" />
              <Target Name="Print"><Message Importance="high" Text="URL|$(RepoRoot)|$(ChunkedAttentionRepositoryUrl)|" /></Target>
              <Target Name="All">
                <ItemGroup><Clone Include="{roots}" /></ItemGroup>
                <MSBuild Projects="$(MSBuildThisFileFullPath)" Targets="Print" Properties="RepoRoot=%(Clone.Identity)" />
              </Target>
            </Project>
            """);

        var output = DotnetCli.Run(_root, null, "msbuild", "probe.proj", "-t:All", "-nologo", "-v:m").ShouldSucceed("msbuild probe").Output;
        var results = Regex.Matches(output, @"URL\|(?<root>[^|]*)\|(?<url>[^|]*)\|")
            .ToDictionary(m => Path.GetFileName(m.Groups["root"].Value.TrimEnd(Path.DirectorySeparatorChar)), m => m.Groups["url"].Value);

        Assert.Equal(cases.ToDictionary(c => c.Key, c => c.Value.Expected).OrderBy(p => p.Key), results.OrderBy(p => p.Key));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
