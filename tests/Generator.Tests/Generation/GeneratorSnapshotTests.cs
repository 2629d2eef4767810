using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// The generated file for each kind of target, compared in full with a checked-in snapshot and
/// compiled with the input, TorchSharp and the runtime: no errors and no warnings, at the newest
/// language version and at every older one the input allows, down to C# 7.3.
/// </summary>
public sealed class GeneratorSnapshotTests
{
    /// <summary>Every case: snapshot name, expected hint name, oldest language version of the input, source.</summary>
    private static readonly Dictionary<string, (string HintName, LanguageVersion Oldest, string Source)> Cases = new()
    {
        ["PlainClass"] = ("Models.SelfAttention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                [ChunkedAttention]
                public partial class SelfAttention
                {
                    // Call sites keep TorchSharp's argument names, only the method name changes.
                    public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v, torch.Tensor mask) =>
                        ChunkedScaledDotProductAttention(q, k, v, attn_mask: mask, p: 0.0, is_casual: false);

                    // From C# 8 on, a null mask warns (CS8625) unless the wrapper declares attn_mask nullable.
                    public torch.Tensor Scaled(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                        ChunkedScaledDotProductAttention(q, k, v, attn_mask: null, scale: 0.5, enable_gqa: true);
                }
            }
            """),
        ["NestedInTwoPartialClasses"] = ("Models.Unet+Block+CrossAttention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                public sealed partial class Unet
                {
                    internal static partial class Block
                    {
                        [ChunkedAttention(ChunkSize = 256)]
                        private sealed partial class CrossAttention
                        {
                            public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                                ChunkedScaledDotProductAttention(q, k, v);
                        }
                    }
                }
            }
            """),
        ["GenericClassWithConstraints"] = ("Models.Layers`1+Attention`2.ChunkedAttention.g.cs", LanguageVersion.CSharp8, """
            using System;
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                public partial class Layers<TLayer>
                    where TLayer : torch.nn.Module, IDisposable
                {
                    [ChunkedAttention(512)]
                    public partial class Attention<TKey, TScalar>
                        where TKey : notnull, IComparable<TKey>
                        where TScalar : unmanaged
                    {
                        public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                            ChunkedScaledDotProductAttention(q, k, v, is_casual: true);
                    }
                }
            }
            """),
        // The user's constraints are written without nullable annotations; the generated file
        // restates them under #nullable enable, which must not produce a mismatch warning.
        ["GenericConstraintsFromNullableObliviousCode"] = ("Models.Attention`2.ChunkedAttention.g.cs", LanguageVersion.CSharp8, """
            #nullable disable
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                [ChunkedAttention]
                public partial class Attention<TOwner, TState>
                    where TOwner : class, System.Collections.Generic.IEnumerable<string>, new()
                    where TState : struct
                {
                }
            }
            """),
        ["FileScopedNamespace"] = ("Models.Diffusion.SpatialAttention.ChunkedAttention.g.cs", LanguageVersion.CSharp10, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models.Diffusion;

            [ChunkedAttention(ChunkSize = 128, Devices = AttentionDevices.Cpu)]
            internal partial class SpatialAttention
            {
                public static torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                    ChunkedScaledDotProductAttention(q, k, v);
            }
            """),
        ["GlobalNamespace"] = ("GlobalAttention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;
            using TorchSharp;

            [ChunkedAttention]
            static partial class GlobalAttention
            {
                public static torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                    ChunkedScaledDotProductAttention(q, k, v);
            }
            """),
        ["Struct"] = ("Models.HeadAttention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                [ChunkedAttention(KeyChunkSize = 64)]
                public readonly partial struct HeadAttention
                {
                    public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                        ChunkedScaledDotProductAttention(q, k, v);
                }
            }
            """),
        ["Record"] = ("Models.AttentionConfig.ChunkedAttention.g.cs", LanguageVersion.CSharp9, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                [ChunkedAttention]
                public sealed partial record AttentionConfig(int Heads)
                {
                    public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                        ChunkedScaledDotProductAttention(q, k, v);
                }
            }
            """),
        ["RecordStructNestedInRecord"] = ("Models.Transformer+Head.ChunkedAttention.g.cs", LanguageVersion.CSharp10, """
            using ChunkedAttention;
            using TorchSharp;

            namespace Models
            {
                public abstract partial record Transformer
                {
                    [ChunkedAttention]
                    public readonly partial record struct Head(int Index)
                    {
                        public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v) =>
                            ChunkedScaledDotProductAttention(q, k, v);
                    }
                }
            }
            """),
        ["AttributeNamedArguments"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention(ChunkSize = 64, KeyChunkSize = 32, Devices = AttentionDevices.Cuda, MaxScoreElements = 1_000_000)]
                public partial class Attention
                {
                }
            }
            """),
        ["AttributePositionalArgument"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention(2048, MaxScoreElements = 1L << 28)]
                public partial class Attention
                {
                }
            }
            """),
        ["AttributeConstFields"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                internal static class Tuning
                {
                    public const int Rows = 3 * 128;
                    public const AttentionDevices Where = AttentionDevices.Mps | AttentionDevices.Cuda;
                }

                [ChunkedAttention(Tuning.Rows, KeyChunkSize = Keys, Devices = Tuning.Where)]
                public partial class Attention
                {
                    private const int Keys = Tuning.Rows / 3;
                }
            }
            """),
        // ChunkSize 0: automatic (the fewest equal chunks within the step budget), a valid setting.
        ["AttributeAutomaticChunkSize"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention(0, Devices = AttentionDevices.Mps | AttentionDevices.Cuda)]
                public partial class Attention
                {
                }
            }
            """),
        ["AttributeFlagCombinations"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                [ChunkedAttention(Devices = AttentionDevices.Cpu | AttentionDevices.Mps)]
                public partial class Attention
                {
                }
            }
            """),
        ["AttributeAllDevicesTryNativeFirst"] = ("Models.Attention.ChunkedAttention.g.cs", LanguageVersion.CSharp7_3, """
            using ChunkedAttention;

            namespace Models
            {
                [global::ChunkedAttention.ChunkedAttentionAttribute(Devices = AttentionDevices.All, TryNativeFirst = true)]
                public partial class Attention
                {
                }
            }
            """),
    };

    public static TheoryData<string> AllCases => new(Cases.Keys);

    // Every language version below C# 9 (which brought init-only setters) with each case written for it.
    public static TheoryData<LanguageVersion, string> CasesBelowCSharp9
    {
        get
        {
            var data = new TheoryData<LanguageVersion, string>();
            foreach (LanguageVersion version in new[] { LanguageVersion.CSharp7_3, LanguageVersion.CSharp8 })
            {
                foreach (string name in Cases.Where(c => c.Value.Oldest <= version).Select(c => c.Key))
                {
                    data.Add(version, name);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Generated_source_matches_snapshot_and_builds_clean(string name)
    {
        (string hintName, LanguageVersion oldest, string source) = Cases[name];

        string text = GenerateAndBuild(source, GeneratorHarness.Newest, hintName);
        Snapshot.Match(name, text);

        // Records and file-scoped namespaces at the version that introduced them (older ones are covered below).
        if (oldest >= LanguageVersion.CSharp9)
        {
            Assert.Equal(text, GenerateAndBuild(source, oldest, hintName));
        }
    }

    [Theory]
    [MemberData(nameof(CasesBelowCSharp9))]
    public void Consumer_below_CSharp9_builds_clean(LanguageVersion version, string name)
    {
        // Init-only setters need C# 9, so the options come from the runtime's settings constructor.
        AssertRuntimeHasSettingsConstructor();
        (string hintName, _, string source) = Cases[name];

        string text = GenerateAndBuild(source, version, hintName);
        Assert.Contains("new global::ChunkedAttention.ChunkedAttentionOptions(", text);
    }

    // C# 8 adds '#nullable enable' and annotations to what C# 7.3 gets; the snapshots show the difference.
    [Theory]
    [InlineData(LanguageVersion.CSharp7_3)]
    [InlineData(LanguageVersion.CSharp8)]
    public void Consumer_below_CSharp9_output_matches_snapshot(LanguageVersion version)
    {
        AssertRuntimeHasSettingsConstructor();
        (string hintName, _, string source) = Cases["PlainClass"];

        Snapshot.Match("PlainClass." + version, GenerateAndBuild(source, version, hintName));
    }

    private static void AssertRuntimeHasSettingsConstructor()
    {
        string[] expected = { "chunkSize", "keyChunkSize", "devices", "maxScoreElements", "tryNativeFirst", "skipDeviceCheck" };
        bool found = typeof(ChunkedAttentionOptions).GetConstructors()
            .Any(constructor => expected.All(name => constructor.GetParameters().Any(parameter => parameter.Name == name)));
        Assert.True(found, "Consumers below C# 9 need a public ChunkedAttentionOptions constructor with the parameters "
            + string.Join(", ", expected) + " (init-only setters need C# 9); the runtime does not have one yet.");
    }

    private static string GenerateAndBuild(string source, LanguageVersion version, string hintName)
    {
        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { source }, version));

        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Null(run.Result.Exception);
        var problems = GeneratorHarness.Problems(run.OutputCompilation);
        Assert.True(problems.IsEmpty, $"C# {version.ToDisplayString()}:\n{GeneratorHarness.Describe(problems)}");

        GeneratedSourceResult generated = Assert.Single(run.Result.GeneratedSources);
        Assert.Equal(hintName, generated.HintName);
        return generated.SourceText.ToString();
    }
}
