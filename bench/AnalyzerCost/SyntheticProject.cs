using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace ChunkedAttention.AnalyzerCost;

/// <summary>
/// Writes a TorchSharp project of <c>files</c> C# files, deterministic for a given count: what a mid-size
/// diffusion/transformer port looks like. Per 40 files: 4 attention classes marked
/// <c>[ChunkedAttention]</c> (calling the generated wrapper), 2 calling SDPA directly (SDPA001; one in 20
/// of those with a causal flag and a mask, SDPA004), 6 with hand-written matmul-softmax-matmul attention,
/// 18 other modules (feed-forward, residual conv, embedding, norm blocks) and 8 plain C# files (configs,
/// schedules, metrics, data). One helper in 100 calls SDPA outside any attention class (SDPA005, off).
/// </summary>
/// <remarks>
/// The project builds two ways from the same sources (<c>-p:WithChunkedAttention=true|false</c>): with the
/// package's analyzer assemblies, or without them and with the wrapper code they generate copied into
/// <c>Pregenerated/</c>, so both builds compile exactly the same program and differ only by the analyzers
/// and the generator running.
/// </remarks>
internal sealed class SyntheticProject
{
    public const string ProjectName = "Synthetic";

    private readonly string _directory;

    public SyntheticProject(string directory) => _directory = directory;

    public string ProjectFile => Path.Combine(_directory, ProjectName + ".csproj");

    public string PregeneratedDirectory => Path.Combine(_directory, "Pregenerated");

    /// <summary>How many files of each kind were written.</summary>
    public IReadOnlyDictionary<string, int> Kinds => _kinds;

    private readonly SortedDictionary<string, int> _kinds = new(StringComparer.Ordinal);

    public void Write(int files, string runtimeAssembly, IReadOnlyList<string> analyzerAssemblies, string torchSharpVersion)
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        Directory.CreateDirectory(Path.Combine(_directory, "Code"));
        Directory.CreateDirectory(PregeneratedDirectory);

        // Isolated from the repository's build settings: a user's project, not one of ours.
        File.WriteAllText(Path.Combine(_directory, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_directory, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(_directory, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_directory, ".editorconfig"), "root = true\n");

        string analyzers = string.Join(Environment.NewLine, analyzerAssemblies.Select(a => $"    <Analyzer Include=\"{a}\" />"));
        File.WriteAllText(ProjectFile, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net8.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <NuGetAudit>false</NuGetAudit>
                <WithChunkedAttention Condition="'$(WithChunkedAttention)' == ''">true</WithChunkedAttention>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="TorchSharp" Version="{torchSharpVersion}" />
                <Reference Include="{runtimeAssembly}" />
              </ItemGroup>
              <!-- With: the package's Roslyn assemblies, as analyzers/dotnet/cs/ brings them. -->
              <ItemGroup Condition="'$(WithChunkedAttention)' == 'true'">
                <Compile Remove="Pregenerated/**" />
            {analyzers}
              </ItemGroup>
              <!-- Without: no analyzers; the generated wrappers as ordinary sources (same program). -->
            </Project>
            """);

        var random = new Random(20240611);
        for (int i = 0; i < files; i++)
        {
            var (kind, text) = FileFor(i, random);
            _kinds[kind] = _kinds.TryGetValue(kind, out int count) ? count + 1 : 1;
            File.WriteAllText(Path.Combine(_directory, "Code", $"{kind}{i:D4}.cs"), text);
        }
    }

    private static (string Kind, string Text) FileFor(int i, Random random)
    {
        string ns = $"Synthetic.Models.Group{i / 50:D2}";
        int dim = 64 * random.Next(2, 13);
        int heads = new[] { 4, 8, 16 }[random.Next(3)];
        int slot = i % 40;
        if (i % 100 == 97)
        {
            return ("Helper", OutsideProcessorHelper(ns, i));
        }

        return slot switch
        {
            < 4 => ("Marked", MarkedAttention(ns, i, dim, heads, random)),
            < 6 => ("Direct", DirectAttention(ns, i, dim, heads, causalWithMask: i % 800 == 5)),
            < 12 => ("Manual", HandWrittenAttention(ns, i, dim, heads, random)),
            < 30 => ("Module", Module(ns, i, dim, random)),
            _ => ("Plain", PlainCode(ns, i, random)),
        };
    }

    private static string MarkedAttention(string ns, int i, int dim, int heads, Random random)
    {
        string settings = random.Next(3) switch
        {
            0 => "",
            1 => $"(ChunkSize = {256 * random.Next(1, 5)})",
            _ => $"(ChunkSize = 1024, Devices = AttentionDevices.Mps | AttentionDevices.Cuda, MaxScoreElements = {1L << random.Next(24, 30)}L)",
        };
        return $$"""
            using ChunkedAttention;
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}};

            /// <summary>Cross-attention {{i}}: queries from the latents, keys and values from the context.</summary>
            [ChunkedAttention{{settings}}]
            public sealed partial class CrossAttention{{i}} : nn.Module<Tensor, Tensor, Tensor>
            {
                private readonly Linear to_q;
                private readonly Linear to_k;
                private readonly Linear to_v;
                private readonly Linear to_out;
                private readonly int heads;

                public CrossAttention{{i}}(int dim, int contextDim) : base(nameof(CrossAttention{{i}}))
                {
                    heads = {{heads}};
                    to_q = nn.Linear(dim, {{dim}}, false);
                    to_k = nn.Linear(contextDim, {{dim}}, false);
                    to_v = nn.Linear(contextDim, {{dim}}, false);
                    to_out = nn.Linear({{dim}}, dim);
                    RegisterComponents();
                }

                public override Tensor forward(Tensor hidden, Tensor context)
                {
                    using var scope = NewDisposeScope();
                    var q = SplitHeads(to_q.forward(hidden));
                    var k = SplitHeads(to_k.forward(context));
                    var v = SplitHeads(to_v.forward(context));
                    var attended = ChunkedScaledDotProductAttention(q, k, v);
                    return to_out.forward(MergeHeads(attended)).MoveToOuterDisposeScope();
                }

                private Tensor SplitHeads(Tensor x) =>
                    x.view(x.shape[0], x.shape[1], heads, x.shape[2] / heads).transpose(1, 2);

                private static Tensor MergeHeads(Tensor x) => x.transpose(1, 2).flatten(2);
            }
            """;
    }

    private static string DirectAttention(string ns, int i, int dim, int heads, bool causalWithMask)
    {
        string call = causalWithMask
            ? "nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, true)"
            : "nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask)";
        return $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}}
            {
                /// <summary>Self-attention {{i}} with an optional mask.</summary>
                public sealed class SelfAttention{{i}} : nn.Module<Tensor, Tensor?, Tensor>
                {
                    private readonly Linear qkv;
                    private readonly Linear proj;
                    private readonly int heads = {{heads}};

                    public SelfAttention{{i}}() : base(nameof(SelfAttention{{i}}))
                    {
                        qkv = nn.Linear({{dim}}, {{dim * 3}});
                        proj = nn.Linear({{dim}}, {{dim}});
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor x, Tensor? mask)
                    {
                        using var scope = NewDisposeScope();
                        long b = x.shape[0], l = x.shape[1];
                        var parts = qkv.forward(x).view(b, l, 3, heads, {{dim}} / heads).permute(2, 0, 3, 1, 4);
                        var q = parts[0];
                        var k = parts[1];
                        var v = parts[2];
                        var y = {{call}};
                        return proj.forward(y.transpose(1, 2).reshape(b, l, {{dim}})).MoveToOuterDisposeScope();
                    }
                }
            }
            """;
    }

    private static string HandWrittenAttention(string ns, int i, int dim, int heads, Random random)
    {
        bool scaleFirst = random.Next(2) == 0;
        string scores = scaleFirst
            ? "var scores = torch.matmul(q * scale, k.transpose(-2, -1));"
            : "var scores = torch.matmul(q, k.transpose(-2, -1)) * scale;";
        return $$"""
            using System;
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}};

            /// <summary>Attention {{i}} written out: scores, mask, softmax, dropout, weighted sum.</summary>
            public class AttnBlock{{i}} : nn.Module<Tensor, Tensor?, Tensor>
            {
                private readonly Linear to_q;
                private readonly Linear to_k;
                private readonly Linear to_v;
                private readonly Linear to_out;
                private readonly double dropout = {{(random.Next(0, 3) * 0.05).ToString("0.00", CultureInfo.InvariantCulture)}};
                private readonly int heads = {{heads}};

                public AttnBlock{{i}}() : base(nameof(AttnBlock{{i}}))
                {
                    to_q = nn.Linear({{dim}}, {{dim}});
                    to_k = nn.Linear({{dim}}, {{dim}});
                    to_v = nn.Linear({{dim}}, {{dim}});
                    to_out = nn.Linear({{dim}}, {{dim}});
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x, Tensor? mask)
                {
                    using var scope = NewDisposeScope();
                    long b = x.shape[0], l = x.shape[1], d = {{dim}} / heads;
                    var q = to_q.forward(x).view(b, l, heads, d).transpose(1, 2);
                    var k = to_k.forward(x).view(b, l, heads, d).transpose(1, 2);
                    var v = to_v.forward(x).view(b, l, heads, d).transpose(1, 2);
                    double scale = 1.0 / Math.Sqrt(d);
                    {{scores}}
                    if (mask is not null)
                    {
                        scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
                    }

                    var weights = scores.softmax(-1);
                    weights = nn.functional.dropout(weights, dropout, training);
                    var attended = torch.matmul(weights, v);
                    return to_out.forward(attended.transpose(1, 2).reshape(b, l, {{dim}})).MoveToOuterDisposeScope();
                }
            }
            """;
    }

    private static string Module(string ns, int i, int dim, Random random) => random.Next(4) switch
    {
        0 => $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}};

            /// <summary>GEGLU feed-forward {{i}}.</summary>
            public sealed class FeedForward{{i}} : nn.Module<Tensor, Tensor>
            {
                private readonly LayerNorm norm;
                private readonly Linear proj_in;
                private readonly Linear proj_out;
                private readonly Dropout drop;

                public FeedForward{{i}}(int mult = 4) : base(nameof(FeedForward{{i}}))
                {
                    norm = nn.LayerNorm({{dim}});
                    proj_in = nn.Linear({{dim}}, {{dim}} * mult * 2);
                    proj_out = nn.Linear({{dim}} * mult, {{dim}});
                    drop = nn.Dropout({{(random.Next(0, 3) * 0.1).ToString("0.0", CultureInfo.InvariantCulture)}});
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x)
                {
                    using var scope = NewDisposeScope();
                    Tensor[] gate = proj_in.forward(norm.forward(x)).chunk(2, -1);
                    var h = drop.forward(gate[0] * nn.functional.gelu(gate[1]));
                    return (x + proj_out.forward(h)).MoveToOuterDisposeScope();
                }
            }
            """,
        1 => $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}}
            {
                /// <summary>Residual block {{i}}: norm, SiLU, conv, twice, with a time embedding.</summary>
                public sealed class ResBlock{{i}} : nn.Module<Tensor, Tensor, Tensor>
                {
                    private readonly GroupNorm norm1;
                    private readonly GroupNorm norm2;
                    private readonly Conv2d conv1;
                    private readonly Conv2d conv2;
                    private readonly Linear time_proj;

                    public ResBlock{{i}}(int channels, int timeDim) : base(nameof(ResBlock{{i}}))
                    {
                        norm1 = nn.GroupNorm(32, channels);
                        norm2 = nn.GroupNorm(32, channels);
                        conv1 = nn.Conv2d(channels, channels, 3, padding: 1);
                        conv2 = nn.Conv2d(channels, channels, 3, padding: 1);
                        time_proj = nn.Linear(timeDim, channels);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor x, Tensor time)
                    {
                        using var scope = NewDisposeScope();
                        var h = conv1.forward(nn.functional.silu(norm1.forward(x)));
                        h = h + time_proj.forward(nn.functional.silu(time)).unsqueeze(-1).unsqueeze(-1);
                        h = conv2.forward(nn.functional.silu(norm2.forward(h)));
                        return (x + h).MoveToOuterDisposeScope();
                    }
                }
            }
            """,
        2 => $$"""
            using System;
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}};

            /// <summary>Token and sinusoidal position embedding {{i}}.</summary>
            public sealed class Embedding{{i}} : nn.Module<Tensor, Tensor>
            {
                private readonly Embedding tokens;
                private readonly int dim = {{dim}};

                public Embedding{{i}}(int vocabulary) : base(nameof(Embedding{{i}}))
                {
                    tokens = nn.Embedding(vocabulary, {{dim}});
                    RegisterComponents();
                }

                public override Tensor forward(Tensor ids)
                {
                    using var scope = NewDisposeScope();
                    long length = ids.shape[1];
                    var position = torch.arange(length, dtype: ScalarType.Float32).unsqueeze(1);
                    var frequencies = torch.exp(torch.arange(0, dim, 2, dtype: ScalarType.Float32) * (-Math.Log(10000.0) / dim));
                    var angles = position * frequencies;
                    var table = torch.cat(new[] { angles.sin(), angles.cos() }, 1);
                    return (tokens.forward(ids) + table.unsqueeze(0)).MoveToOuterDisposeScope();
                }
            }
            """,
        _ => $$"""
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace {{ns}};

            /// <summary>Pre-norm wrapper {{i}} with a learned gate.</summary>
            public sealed class GatedNorm{{i}} : nn.Module<Tensor, Tensor>
            {
                private readonly LayerNorm norm;
                private readonly Linear gate;
                private readonly Linear value;

                public GatedNorm{{i}}() : base(nameof(GatedNorm{{i}}))
                {
                    norm = nn.LayerNorm({{dim}});
                    gate = nn.Linear({{dim}}, {{dim}});
                    value = nn.Linear({{dim}}, {{dim}});
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x)
                {
                    using var scope = NewDisposeScope();
                    var h = norm.forward(x);
                    var g = torch.sigmoid(gate.forward(h));
                    return (x + g * value.forward(h)).MoveToOuterDisposeScope();
                }
            }
            """,
    };

    private static string PlainCode(string ns, int i, Random random) => random.Next(3) switch
    {
        0 => $$"""
            namespace {{ns}};

            /// <summary>Settings {{i}} of one training run.</summary>
            public sealed record TrainingConfig{{i}}(
                int Epochs = {{random.Next(1, 100)}},
                int BatchSize = {{1 << random.Next(2, 7)}},
                double LearningRate = {{random.Next(1, 10)}}e-4,
                double WarmupFraction = 0.05,
                string Scheduler = "cosine")
            {
                public int WarmupSteps(int stepsPerEpoch) => (int)(Epochs * stepsPerEpoch * WarmupFraction);

                public double LearningRateAt(int step, int totalSteps)
                {
                    int warmup = WarmupSteps(totalSteps / Math.Max(1, Epochs));
                    if (step < warmup)
                    {
                        return LearningRate * (step + 1) / warmup;
                    }

                    double progress = (double)(step - warmup) / Math.Max(1, totalSteps - warmup);
                    return Scheduler switch
                    {
                        "cosine" => LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress)),
                        "linear" => LearningRate * (1 - progress),
                        _ => LearningRate,
                    };
                }
            }
            """,
        1 => $$"""
            namespace {{ns}}
            {
                /// <summary>Running metrics {{i}}.</summary>
                public sealed class Metrics{{i}}
                {
                    private readonly List<double> _losses = new();
                    private readonly Dictionary<string, double> _best = new(StringComparer.Ordinal);

                    public void Add(double loss) => _losses.Add(loss);

                    public double Mean => _losses.Count == 0 ? double.NaN : _losses.Average();

                    public double MovingAverage(int window) =>
                        _losses.Skip(Math.Max(0, _losses.Count - window)).DefaultIfEmpty(double.NaN).Average();

                    public bool Improved(string name, double value)
                    {
                        if (_best.TryGetValue(name, out var best) && best <= value)
                        {
                            return false;
                        }

                        _best[name] = value;
                        return true;
                    }

                    public override string ToString() =>
                        $"loss {Mean:F4} (last {{random.Next(10, 100)}}: {MovingAverage({{random.Next(10, 100)}}):F4}), best: {string.Join(", ", _best.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value:F3}"))}";
                }
            }
            """,
        _ => $$"""
            using System.Text;

            namespace {{ns}};

            /// <summary>Prompt handling {{i}}: weights in parentheses, as diffusion UIs write them.</summary>
            public static class PromptParser{{i}}
            {
                public static IReadOnlyList<(string Text, double Weight)> Parse(string prompt)
                {
                    var result = new List<(string, double)>();
                    var current = new StringBuilder();
                    double weight = 1.0;
                    foreach (char c in prompt)
                    {
                        switch (c)
                        {
                            case '(':
                                Flush();
                                weight *= 1.1;
                                break;
                            case ')':
                                Flush();
                                weight /= 1.1;
                                break;
                            default:
                                current.Append(c);
                                break;
                        }
                    }

                    Flush();
                    return result;

                    void Flush()
                    {
                        if (current.Length > 0)
                        {
                            result.Add((current.ToString().Trim(), Math.Round(weight, {{random.Next(2, 5)}})));
                            current.Clear();
                        }
                    }
                }
            }
            """,
    };

    private static string OutsideProcessorHelper(string ns, int i) => $$"""
        using TorchSharp;
        using static TorchSharp.torch;

        namespace {{ns}};

        /// <summary>A numerical check {{i}} outside any attention class (SDPA005, off by default).</summary>
        public static class Reference{{i}}
        {
            public static double MaxDifference(Tensor q, Tensor k, Tensor v, Tensor expected)
            {
                using var scope = NewDisposeScope();
                return (nn.functional.scaled_dot_product_attention(q, k, v) - expected).abs().max().ToDouble();
            }
        }
        """;
}
