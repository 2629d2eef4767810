using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace ChunkedAttention.EndToEnd.Tests;

/// <summary>
/// The user's path through the packed package: install it in a fresh project, see SDPA001,
/// accept the fix with <c>dotnet format</c>, build clean, and get the same result as native SDPA.
/// </summary>
public sealed partial class PackageEndToEndTests : IClassFixture<PackedPackageFixture>
{
    private const string TorchSharpVersion = "0.107.0";
    private const string LibTorchVersion = "2.10.0";

    private readonly PackedPackageFixture _package;

    public PackageEndToEndTests(PackedPackageFixture package) => _package = package;

    [Fact]
    public void PackageHoldsRuntimeAndRoslynComponentsAndDependsOnTorchSharpOnly()
    {
        using ZipArchive archive = ZipFile.OpenRead(_package.PackagePath);
        string[] entries = archive.Entries.Select(e => e.FullName).ToArray();

        Assert.Contains("lib/net8.0/ChunkedAttention.Runtime.dll", entries);
        Assert.Contains("lib/netstandard2.0/ChunkedAttention.Runtime.dll", entries);
        Assert.Contains("analyzers/dotnet/cs/ChunkedAttention.Generator.dll", entries);
        Assert.Contains("analyzers/dotnet/cs/ChunkedAttention.CodeFixes.dll", entries);
        Assert.Contains("README.md", entries);
        Assert.DoesNotContain(entries, e => e.Contains("Microsoft.CodeAnalysis", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(entries, e => e.Contains("libtorch", StringComparison.OrdinalIgnoreCase) || e.EndsWith(".so", StringComparison.Ordinal));
        Assert.DoesNotContain(entries, e => e.Contains("glibcxx", StringComparison.OrdinalIgnoreCase)); // the build-only fix never ships

        ZipArchiveEntry nuspecEntry = archive.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using Stream nuspecStream = nuspecEntry.Open();
        XDocument nuspec = XDocument.Load(nuspecStream);
        XNamespace ns = nuspec.Root!.Name.Namespace;
        Assert.Equal("ChunkedAttention", nuspec.Root.Element(ns + "metadata")!.Element(ns + "id")!.Value);
        // Project and repository URL: the build's ChunkedAttentionRepositoryUrl, or none at all when it is empty.
        XElement metadata = nuspec.Root.Element(ns + "metadata")!;
        string url = RepositoryUrlTests.BuildRepositoryUrl();
        Assert.Equal(url.Length == 0 ? null : url, metadata.Element(ns + "projectUrl")?.Value);
        Assert.Equal(url.Length == 0 ? null : url, metadata.Element(ns + "repository")?.Attribute("url")?.Value);
        string[] dependencies = nuspec.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).Distinct().ToArray();
        Assert.Equal(new[] { "TorchSharp" }, dependencies);
        Assert.True(File.Exists(Path.ChangeExtension(_package.PackagePath, ".snupkg")), "symbols package (snupkg) is produced");
    }

    [Fact]
    public void FreshProjectSeesSdpa001AcceptsTheFixWithDotnetFormatAndMatchesNative()
    {
        string project = Path.Combine(_package.WorkRoot, "consumer");
        WriteConsumerProject(project);

        // 1. Direct SDPA calls in attention classes are flagged.
        var first = DotnetCli.Run(project, null, "build", "-nologo", "-clp:NoSummary").ShouldSucceed("first build");
        string[] sdpa001 = DiagnosticLines(first.Output, "SDPA001");
        Assert.True(sdpa001.Length == 2, "expected SDPA001 on both attention classes, got:" + Environment.NewLine + first.Output);
        Assert.All(sdpa001, line => Assert.Contains("Attention.cs", line));

        // 2. The user accepts the fix for the whole project.
        DotnetCli.Run(project, null, "format", "analyzers", "--diagnostics", "SDPA001", "--verbosity", "minimal")
            .ShouldSucceed("dotnet format analyzers --diagnostics SDPA001");
        string fixedSource = File.ReadAllText(Path.Combine(project, "Attention.cs"));
        Assert.DoesNotContain("scaled_dot_product_attention", fixedSource);
        Assert.Equal(2, Regex.Matches(fixedSource, @"ChunkedScaledDotProductAttention\(").Count);
        Assert.Contains("ChunkedScaledDotProductAttention(query, key, value, attn_mask: mask)", fixedSource);
        Assert.Contains("// keep this comment", fixedSource);
        Assert.Matches(@"\[(ChunkedAttention\.)?ChunkedAttention(Attribute)?\]\s*public sealed partial class SelfAttention", fixedSource);
        Assert.Matches(@"public static partial class Layers", fixedSource);
        Assert.Matches(@"\[(ChunkedAttention\.)?ChunkedAttention(Attribute)?\]\s*public sealed partial class CrossAttn", fixedSource);
        Assert.Contains("nn.functional.scaled_dot_product_attention", File.ReadAllText(Path.Combine(project, "Program.cs"))); // outside processors: untouched

        // 3. The fixed project builds with no diagnostics of ours.
        var second = DotnetCli.Run(project, null, "build", "-nologo", "--no-incremental").ShouldSucceed("build after the fix");
        Assert.Empty(DiagnosticLines(second.Output, "SDPA00"));

        // 4. Chunked (forced on CPU, small chunks so several are used) equals native SDPA.
        var environment = new Dictionary<string, string?> { ["CHUNKED_ATTENTION"] = "always", ["CHUNKED_ATTENTION_CHUNK_SIZE"] = "64" };
        var run = DotnetCli.Run(project, environment, "run", "--no-build").ShouldSucceed("running the fixed project");
        Match chunked = Regex.Match(run.Output, @"should-chunk (\w+)");
        Match diff = Regex.Match(run.Output, @"max-diff ([0-9.eE+-]+)");
        Assert.True(chunked.Success && diff.Success, "unexpected program output:" + Environment.NewLine + run.Output);
        Assert.Equal("True", chunked.Groups[1].Value);
        Assert.InRange(double.Parse(diff.Groups[1].Value, CultureInfo.InvariantCulture), 0.0, 1e-5);
    }

    [Theory]
    [InlineData("net6.0")]          // C# 10, the oldest target of the repositories we studied
    [InlineData("netstandard2.0")]  // C# 7.3: the generated wrapper's oldest language version
    public void OlderTargetsGetTheNetStandardBuildAndTheGeneratedWrapperCompiles(string targetFramework)
    {
        string project = Path.Combine(_package.WorkRoot, "library-" + targetFramework);
        WriteSharedConsumerFiles();
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "Library.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>{targetFramework}</TargetFramework>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ChunkedAttention" Version="{_package.Version}" />
                <PackageReference Include="TorchSharp" Version="{TorchSharpVersion}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Attention.cs"), """
            using ChunkedAttention;
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Library
            {
                [ChunkedAttention(ChunkSize = 256, Devices = AttentionDevices.Mps | AttentionDevices.Cuda)]
                public sealed partial class CrossAttention : nn.Module
                {
                    public CrossAttention() : base(nameof(CrossAttention)) { }

                    public Tensor Forward(Tensor q, Tensor k, Tensor v, Tensor mask)
                    {
                        return ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, is_casual: true, scale: 0.125);
                    }
                }
            }
            """);

        var build = DotnetCli.Run(project, null, "build", "-nologo").ShouldSucceed($"building a {targetFramework} library");
        Assert.Empty(DiagnosticLines(build.Output, "SDPA00"));
        // What NuGet chose to compile against, from the restore's assets file: targets -> framework -> package -> compile.
        using var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(project, "obj", "project.assets.json")));
        JsonElement target = assets.RootElement.GetProperty("targets").EnumerateObject().Single().Value;
        JsonElement package = target.GetProperty("ChunkedAttention/" + _package.Version);
        string[] compiled = package.GetProperty("compile").EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(new[] { "lib/netstandard2.0/ChunkedAttention.Runtime.dll" }, compiled);
    }

    private static string[] DiagnosticLines(string output, string idPrefix) =>
        output.Split('\n')
            .Where(line => Regex.IsMatch(line, $@"(warning|error|info) {idPrefix}\d*"))
            .Select(line => line.Trim())
            .Distinct()
            .ToArray();

    /// <summary>
    /// The files above every consumer project: isolation from this repository's build settings, the build-only
    /// TorchSharp loading fix (Debian 12's libstdc++ is too old for libLibTorchSharp.so) and the local feed.
    /// </summary>
    private void WriteSharedConsumerFiles()
    {
        string root = _package.WorkRoot;
        File.WriteAllText(Path.Combine(root, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(root, "Directory.Build.targets"),
            $"<Project>\n  <Import Project=\"{Path.Combine(_package.RepositoryRoot, "eng", "TorchSharpNativeFix.targets")}\" />\n</Project>\n");
        File.WriteAllText(Path.Combine(root, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(root, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{_package.Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
    }

    /// <summary>The net10.0 console project both consumer tests build: the packed package, TorchSharp and its CPU libtorch.</summary>
    private void WriteConsumerCsproj(string directory) =>
        File.WriteAllText(Path.Combine(directory, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ChunkedAttention" Version="{_package.Version}" />
                <PackageReference Include="TorchSharp" Version="{TorchSharpVersion}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="{LibTorchVersion}" />
              </ItemGroup>
            </Project>
            """);

    private void WriteConsumerProject(string directory)
    {
        Directory.CreateDirectory(directory);
        WriteSharedConsumerFiles();

        WriteConsumerCsproj(directory);

        // No severity for SDPA001: dotnet format fixes it as it is (warning by default); only diagnostics
        // that are off or below warning by default need one (README). root = true keeps outer files out.
        File.WriteAllText(Path.Combine(directory, ".editorconfig"), """
            root = true
            """);

        File.WriteAllText(Path.Combine(directory, "Attention.cs"), """
            using TorchSharp;
            using static TorchSharp.torch;

            namespace Consumer;

            public sealed class SelfAttention : nn.Module
            {
                public SelfAttention() : base(nameof(SelfAttention)) { }

                public Tensor Forward(Tensor query, Tensor key, Tensor value, Tensor? mask)
                {
                    return nn.functional.scaled_dot_product_attention(query, key, value, attn_mask: mask);
                }
            }

            public static class Layers
            {
                public sealed class CrossAttn
                {
                    public static Tensor Apply(Tensor q, Tensor k, Tensor v, Tensor mask) =>
                        torch.nn.functional.scaled_dot_product_attention(
                            q, k, v, // keep this comment
                            mask);
                }
            }
            """);

        File.WriteAllText(Path.Combine(directory, "Program.cs"), """
            using ChunkedAttention;
            using Consumer;
            using TorchSharp;
            using static TorchSharp.torch;

            manual_seed(7);
            using var q = randn(2, 4, 300, 16);
            using var k = randn(2, 4, 200, 16);
            using var v = randn(2, 4, 200, 16);
            using var mask = randn(2, 1, 300, 200).gt(-0.5);

            using var native = nn.functional.scaled_dot_product_attention(q, k, v, mask);
            using var a = new SelfAttention().Forward(q, k, v, mask);
            using var b = Layers.CrossAttn.Apply(q, k, v, mask);
            double diff = Math.Max((a - native).abs().max().ToDouble(), (b - native).abs().max().ToDouble());
            Console.WriteLine($"should-chunk {ChunkedSdpa.ShouldChunk(q, k)}");
            Console.WriteLine($"max-diff {diff.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}");
            """);
    }
}
