using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verify = ChunkedAttention.Generator.Tests.Analysis.AnalyzerVerifier<ChunkedAttention.Generator.Analysis.SdpaCallAnalyzer>;

namespace ChunkedAttention.Generator.Tests.Analysis;

public class SdpaCallAnalyzerTests
{
    private const string EnableSdpa005 = "dotnet_diagnostic.SDPA005.severity = suggestion";

    // ---- every way of writing the call binds ----

    [Theory]
    [InlineData("using TorchSharp;", "TorchSharp.torch.nn.functional.{|SDPA001:scaled_dot_product_attention|}")]
    [InlineData("using TorchSharp;", "global::TorchSharp.torch.nn.functional.{|SDPA001:scaled_dot_product_attention|}")]
    [InlineData("using TorchSharp;", "torch.nn.functional.{|SDPA001:scaled_dot_product_attention|}")]
    [InlineData("using static TorchSharp.torch;", "nn.functional.{|SDPA001:scaled_dot_product_attention|}")]
    [InlineData("using F = TorchSharp.torch.nn.functional;", "F.{|SDPA001:scaled_dot_product_attention|}")]
    [InlineData("using static TorchSharp.torch.nn.functional;", "{|SDPA001:scaled_dot_product_attention|}")]
    public async Task Every_call_form_is_reported(string usingDirective, string call)
    {
        var source = $$"""
            {{usingDirective}}
            using Tensor = TorchSharp.torch.Tensor;

            class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v)
                {
                    return {{call}}(q, k, v);
                }
            }
            """;
        await Verify.VerifyAsync(source);
    }

    [Fact]
    public async Task Message_names_the_type_and_the_fix()
    {
        var test = Verify.Create("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Forward(Tensor q, Tensor k, Tensor v) => nn.functional.{|#0:scaled_dot_product_attention|}(q, k, v);
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallInProcessor).WithLocation(0).WithArguments(
            "'SelfAttention'", "use chunked attention: call ChunkedScaledDotProductAttention, mark 'SelfAttention' [ChunkedAttention] and make it partial"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Message_does_not_promise_the_fix_where_no_type_can_host_the_wrapper()
    {
        var test = Verify.Create("""
            using static TorchSharp.torch;

            var x = ones(1, 1, 2, 4);
            var y = nn.functional.{|#0:scaled_dot_product_attention|}(x, x, x);

            interface IAttentionProcessor
            {
                Tensor Apply(Tensor q) => nn.functional.{|#1:scaled_dot_product_attention|}(q, q, q);
            }

            partial class Program
            {
                static Tensor Helper(Tensor q) => nn.functional.{|#2:scaled_dot_product_attention|}(q, q, q);
            }
            """);
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestState.AnalyzerConfigFiles.Add(("/.editorconfig", "root = true\n[*.cs]\n" + EnableSdpa005 + "\n"));
        const string Move = "move the call into a class or struct marked [ChunkedAttention] and call ChunkedScaledDotProductAttention there";
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallOutsideProcessor).WithLocation(0).WithArguments("top-level statements", Move));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallInProcessor).WithLocation(1).WithArguments("interface 'IAttentionProcessor'", Move));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallOutsideProcessor).WithLocation(2).WithArguments(
            "'Program'", "use chunked attention: call ChunkedScaledDotProductAttention, mark 'Program' [ChunkedAttention] and make it partial"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Message_does_not_promise_the_fix_where_the_wrapper_cannot_be_generated()
    {
        var test = Verify.Create("""
            using static TorchSharp.torch;

            file class FileLocalAttention
            {
                Tensor Apply(Tensor q) => nn.functional.{|#0:scaled_dot_product_attention|}(q, q, q);
            }

            class ClashingAttention
            {
                private static int ChunkedScaledDotProductAttentionOptions;

                Tensor Apply(Tensor q) => nn.functional.{|#1:scaled_dot_product_attention|}(q, q, q, ones(2, 2), is_casual: true);
            }
            """);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallInProcessor).WithLocation(0).WithArguments(
            "'FileLocalAttention'", DiagnosticDescriptors.FileLocalRemedy));
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.CausalWithMask).WithLocation(1).WithArguments(
            "rename or remove the member 'ChunkedScaledDotProductAttentionOptions' of 'ClashingAttention' (the generator adds a member of that name), "
            + "then mark 'ClashingAttention' [ChunkedAttention] and call ChunkedScaledDotProductAttention"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Message_says_to_reference_the_runtime_when_it_is_missing()
    {
        var test = Verify.Create("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor Apply(Tensor q) => nn.functional.{|#0:scaled_dot_product_attention|}(q, q, q);
            }
            """);
        test.TestState.AdditionalReferences.Clear();
        test.TestState.AdditionalReferences.Add(RoslynTestSetup.ProductReferences[0]);
        test.ExpectedDiagnostics.Add(new DiagnosticResult(DiagnosticDescriptors.DirectCallInProcessor).WithLocation(0).WithArguments(
            "'SelfAttention'",
            "reference the ChunkedAttention runtime (assembly ChunkedAttention.Runtime of the ChunkedAttention package; this project does not), "
            + "then mark 'SelfAttention' [ChunkedAttention] and call ChunkedScaledDotProductAttention"));
        await test.RunAsync();
    }

    [Fact]
    public async Task Only_diagnostics_whose_fix_applies_carry_the_host_type_for_the_fixer()
    {
        var compilation = CSharpCompilation.Create(
            "HostTypes",
            new[]
            {
                CSharpSyntaxTree.ParseText("""
                    using static TorchSharp.torch;

                    namespace Models
                    {
                        partial class Outer<T>
                        {
                            class SelfAttention
                            {
                                Tensor Apply(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
                            }
                        }

                        interface IAttention
                        {
                            Tensor Apply(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
                        }
                    }
                    """),
            },
            (await RoslynTestSetup.ReferenceAssemblies.ResolveAsync(LanguageNames.CSharp, CancellationToken.None)).AddRange(RoslynTestSetup.ProductReferences),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));

        var diagnostics = (await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new SdpaCallAnalyzer())).GetAnalyzerDiagnosticsAsync())
            .OrderBy(d => d.Location.SourceSpan.Start)
            .ToArray();

        Assert.Equal(2, diagnostics.Length);
        Assert.Equal("T:Models.Outer`1.SelfAttention", diagnostics[0].Properties[FixProperties.HostType]);
        Assert.False(diagnostics[1].Properties.ContainsKey(FixProperties.HostType));
    }

    // ---- every place a call can hide is searched ----

    [Fact]
    public async Task Calls_in_lambdas_local_functions_ctors_accessors_and_initializers_are_reported()
    {
        await Verify.VerifyAsync("""
            using System;
            using static TorchSharp.torch;

            class SelfAttention
            {
                private static readonly Tensor Seed = ones(1, 1, 2, 4);
                private readonly Func<Tensor, Tensor> _field = x => nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x);
                private readonly Tensor _fromCtor;

                public SelfAttention()
                {
                    _fromCtor = nn.functional.{|SDPA001:scaled_dot_product_attention|}(Seed, Seed, Seed);
                }

                public Tensor Property => nn.functional.{|SDPA001:scaled_dot_product_attention|}(Seed, Seed, Seed);

                public Tensor WithAccessor
                {
                    get { return nn.functional.{|SDPA001:scaled_dot_product_attention|}(Seed, Seed, Seed); }
                }

                public Tensor Expression(Tensor x) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x);

                public Tensor Local(Tensor x)
                {
                    return Inner(x);
                    static Tensor Inner(Tensor y) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(y, y, y);
                }

                public Tensor Lambda(Tensor x)
                {
                    Func<Tensor, Tensor> f = y => nn.functional.{|SDPA001:scaled_dot_product_attention|}(y, y, y);
                    return f(x);
                }

                public Tensor Nested(Tensor x) =>
                    nn.functional.{|SDPA001:scaled_dot_product_attention|}(nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x), x, x);
            }
            """);
    }

    [Fact]
    public async Task Calls_in_top_level_statements_are_found()
    {
        var test = Verify.Create("""
            using static TorchSharp.torch;

            var x = ones(1, 1, 2, 4);
            var y = nn.functional.{|SDPA005:scaled_dot_product_attention|}(x, x, x);
            var z = nn.functional.{|SDPA004:scaled_dot_product_attention|}(x, x, x, ones(2, 2), is_casual: true);
            """);
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestState.AnalyzerConfigFiles.Add(("/.editorconfig", "root = true\n[*.cs]\n" + EnableSdpa005 + "\n"));
        await test.RunAsync();
    }

    // ---- look-alikes never ----

    [Fact]
    public async Task Look_alikes_strings_comments_nameof_reflection_and_method_groups_are_not_reported()
    {
        await Verify.VerifyWithEditorConfigAsync(EnableSdpa005, """
            using System;
            using static TorchSharp.torch;

            namespace Mine
            {
                static class functional
                {
                    public static Tensor scaled_dot_product_attention(Tensor q, Tensor k, Tensor v) => q;
                }

                class SelfAttention
                {
                    // nn.functional.scaled_dot_product_attention(q, k, v) would be reported
                    const string Name = "scaled_dot_product_attention";

                    Tensor Forward(Tensor q, Tensor k, Tensor v)
                    {
                        var own = functional.scaled_dot_product_attention(q, k, v);
                        var name = nameof(nn.functional.scaled_dot_product_attention);
                        var method = typeof(nn.functional).GetMethod("scaled_dot_product_attention");
                        Func<Tensor, Tensor, Tensor, Tensor?, double, bool, Tensor> group = nn.functional.scaled_dot_product_attention;
                        return own;
                    }

                    Tensor scaled_dot_product_attention(Tensor q) => q;

                    Tensor Instance(Tensor q) => scaled_dot_product_attention(q);
                }
            }
            """);
    }

    [Fact]
    public async Task Same_namespace_and_names_in_another_assembly_without_TorchSharp_are_not_reported()
    {
        var test = new Microsoft.CodeAnalysis.CSharp.Testing.CSharpAnalyzerTest<SdpaCallAnalyzer, DefaultVerifier>
        {
            ReferenceAssemblies = RoslynTestSetup.ReferenceAssemblies,
            TestCode = """
                namespace TorchSharp
                {
                    public static class torch
                    {
                        public static class nn
                        {
                            public static class fn
                            {
                                public static object scaled_dot_product_attention(object q, object k, object v) => q;
                            }
                        }
                    }
                }

                class SelfAttention
                {
                    object Forward(object q) => TorchSharp.torch.nn.fn.scaled_dot_product_attention(q, q, q);
                }
                """,
        };
        await test.RunAsync();
    }

    [Fact]
    public async Task Generated_code_is_not_analyzed()
    {
        var call = """
            using static TorchSharp.torch;

            partial class SelfAttention{0}
            {{
                Tensor Forward(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q, ones(2, 2), is_casual: true);
            }}
            """;
        var test = Verify.Create();
        test.TestState.Sources.Add(("/0/SelfAttention.g.cs", string.Format(call, 1)));
        test.TestState.Sources.Add(("/0/Header.cs", "// <auto-generated/>\n" + string.Format(call, 2)));
        await test.RunAsync();
    }

    [Fact]
    public async Task The_generated_wrapper_itself_is_not_reported_even_outside_a_generated_file()
    {
        await Verify.VerifyAsync("""
            using System.CodeDom.Compiler;
            using static TorchSharp.torch;

            partial class SelfAttention
            {
                [GeneratedCode("ChunkedAttention.Generator", "1.0.0")]
                private static Tensor ChunkedScaledDotProductAttention(Tensor q, Tensor k, Tensor v) =>
                    nn.functional.scaled_dot_product_attention(q, k, v);
            }
            """);
    }

    // ---- what an attention processor is ----

    [Fact]
    public async Task Type_marked_ChunkedAttention_is_a_processor()
    {
        await Verify.VerifyAsync("""
            using ChunkedAttention;
            using static TorchSharp.torch;

            [ChunkedAttention]
            partial class Mixer
            {
                Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task Module_subclass_at_depth_two_is_a_processor()
    {
        await Verify.VerifyAsync("""
            using static TorchSharp.torch;

            abstract class Block : nn.Module<Tensor, Tensor>
            {
                protected Block() : base("block") { }
            }

            sealed class Mixer : Block
            {
                public override Tensor forward(Tensor x) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(x, x, x);
            }
            """);
    }

    [Theory]
    [InlineData("class CrossAttentionProcessor", "")]
    [InlineData("class AttnProcessor2_0", "")]
    [InlineData("class Processor : AttentionBase", "class AttentionBase { }")]
    [InlineData("class Processor : Middle", "class AttnBase { } class Middle : AttnBase { }")]
    [InlineData("class Processor : IAttnProcessor", "interface IAttnProcessor { }")]
    [InlineData("class Processor : IDerived", "interface IAttentionProcessor { } interface IDerived : IAttentionProcessor { }")]
    [InlineData("struct AttentionState", "")]
    [InlineData("record AttnRecord", "")]
    public async Task Names_containing_Attention_or_Attn_make_a_processor(string declaration, string extra)
    {
        await Verify.VerifyAsync($$"""
            using static TorchSharp.torch;

            {{extra}}

            {{declaration}}
            {
                Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """);
    }

    [Theory]
    [InlineData("class Helper")]
    [InlineData("class Pattern")]
    [InlineData("class Attentive")]
    public async Task Other_types_are_silent_by_default(string declaration)
    {
        await Verify.VerifyAsync($$"""
            using static TorchSharp.torch;

            {{declaration}}
            {
                Tensor Forward(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q);
            }
            """);
    }

    [Fact]
    public async Task SDPA005_is_off_in_a_plain_compilation_without_options()
    {
        // No testing framework in between: the severities a real build starts from.
        var references = await RoslynTestSetup.ReferenceAssemblies.ResolveAsync(LanguageNames.CSharp, CancellationToken.None);
        var compilation = CSharpCompilation.Create(
            "Plain",
            new[] { CSharpSyntaxTree.ParseText("""
                using static TorchSharp.torch;

                class Helper { Tensor F(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q); }
                class SelfAttention { Tensor F(Tensor q) => nn.functional.scaled_dot_product_attention(q, q, q); }
                """) },
            references.AddRange(RoslynTestSetup.ProductReferences),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));

        var diagnostics = await compilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new SdpaCallAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();

        Assert.Equal(new[] { "SDPA001" }, diagnostics.Select(d => d.Id));
    }

    [Fact]
    public async Task SDPA005_reports_other_types_once_enabled_in_editorconfig()
    {
        await Verify.VerifyWithEditorConfigAsync(EnableSdpa005, """
            using static TorchSharp.torch;

            class Helper
            {
                Tensor Forward(Tensor q) => nn.functional.{|SDPA005:scaled_dot_product_attention|}(q, q, q);
            }

            class SelfAttention
            {
                Tensor Forward(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q);
            }
            """);
    }

    // ---- SDPA004: causal + mask ----

    [Fact]
    public async Task SDPA004_positional_and_named_and_constant_replace_SDPA001()
    {
        await Verify.VerifyAsync("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                const bool Causal = true;

                Tensor Positional(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, 0.0, true);
                Tensor Named(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, attn_mask: m, is_casual: true);
                Tensor Reordered(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(is_casual: Causal, value: q, key: q, query: q, attn_mask: m);
                Tensor Mixed(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
            }
            """);
    }

    [Fact]
    public async Task SDPA004_only_when_provable()
    {
        await Verify.VerifyAsync("""
            using static TorchSharp.torch;

            class SelfAttention
            {
                Tensor NullMask(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, null, 0.0, true);
                Tensor NamedNull(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, attn_mask: null, is_casual: true);
                Tensor DefaultMask(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, default, 0.0, true);
                Tensor CastNull(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, (Tensor?)null, 0.0, true);
                Tensor NoMask(Tensor q) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, is_casual: true);
                Tensor NotCausal(Tensor q, Tensor m) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, m, 0.0, false);
                Tensor RuntimeFlag(Tensor q, Tensor m, bool causal) => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q, m, is_casual: causal);
            }
            """);
    }

    [Fact]
    public async Task SDPA004_is_reported_outside_processors_even_with_SDPA005_off()
    {
        await Verify.VerifyAsync("""
            using static TorchSharp.torch;

            class Helper
            {
                Tensor Forward(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
            }
            """);
    }
}
