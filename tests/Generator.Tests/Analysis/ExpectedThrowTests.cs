using System.Threading.Tasks;
using Xunit;
using Verify = ChunkedAttention.Generator.Tests.Analysis.AnalyzerVerifier<ChunkedAttention.Generator.Analysis.SdpaCallAnalyzer>;

namespace ChunkedAttention.Generator.Tests.Analysis;

/// <summary>
/// SDPA004 is not reported where the throw is the point: inside a lambda or anonymous method passed to a
/// method whose name contains "Throws". Stand-ins with the test frameworks' own names and shapes keep
/// the tests free of the frameworks themselves.
/// </summary>
public class ExpectedThrowTests
{
    private const string TestFrameworks = """
        using System;
        using System.Threading.Tasks;

        namespace Xunit
        {
            public static class Assert
            {
                public static T Throws<T>(Action testCode) where T : Exception => null!;
                public static T Throws<T>(Func<object?> testCode) where T : Exception => null!;
                public static Task<T> ThrowsAsync<T>(Func<Task> testCode) where T : Exception => null!;
                public static T ThrowsAny<T>(Action testCode) where T : Exception => null!;
            }

            public static class Record
            {
                public static Exception? Exception(Action testCode) => null;
            }
        }

        namespace NUnit.Framework
        {
            public delegate void TestDelegate();

            public static class Assert
            {
                public static T? Throws<T>(TestDelegate code) where T : Exception => null;
                public static void That(TestDelegate code, object constraint) { }
            }

            public static class Throws
            {
                public static object ArgumentException => new();
            }
        }

        namespace Microsoft.VisualStudio.TestTools.UnitTesting
        {
            public static class Assert
            {
                public static T ThrowsException<T>(Action action) where T : Exception => null!;
                public static Task<T> ThrowsExceptionAsync<T>(Func<Task> action) where T : Exception => null!;
            }
        }
        """;

    [Fact]
    public async Task Not_reported_in_lambdas_passed_to_xunit_NUnit_and_MSTest_Throws_methods()
    {
        // The class name makes it an attention processor: SDPA001 is not reported instead either.
        await Verify.VerifyAsync(TestFrameworks, """
            using System;
            using System.Threading.Tasks;
            using static TorchSharp.torch;
            using X = Xunit.Assert;
            using N = NUnit.Framework.Assert;
            using M = Microsoft.VisualStudio.TestTools.UnitTesting.Assert;

            class AttentionTests
            {
                void Xunit(Tensor q, Tensor m)
                {
                    X.Throws<ArgumentException>(() => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true));
                    X.Throws<ArgumentException>(() => { var y = nn.functional.scaled_dot_product_attention(q, q, q, m, 0.0, true); });
                    X.ThrowsAny<Exception>(delegate { nn.functional.scaled_dot_product_attention(q, q, q, attn_mask: m, is_casual: true); });
                    X.ThrowsAsync<ArgumentException>(async () => { await Task.Yield(); nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true); });
                    X.Throws<ArgumentException>(() => { Func<Tensor> inner = () => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true); return inner(); });
                }

                void NUnit(Tensor q, Tensor m) =>
                    N.Throws<ArgumentException>(() => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true));

                void MSTest(Tensor q, Tensor m)
                {
                    M.ThrowsException<ArgumentException>(() => nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true));
                    M.ThrowsExceptionAsync<ArgumentException>(() => Task.FromResult(nn.functional.scaled_dot_product_attention(q, q, q, m, is_casual: true)));
                }
            }
            """);
    }

    [Fact]
    public async Task Reported_everywhere_else()
    {
        await Verify.VerifyAsync(TestFrameworks, """
            using System;
            using System.Threading.Tasks;
            using NUnit.Framework;
            using static TorchSharp.torch;

            class AttentionTests
            {
                // Not a lambda argument of a *Throws* method: Assert.That, Record.Exception, Task.Run, a plain call.
                void Others(Tensor q, Tensor m)
                {
                    Assert.That(() => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true), Throws.ArgumentException);
                    Xunit.Record.Exception(() => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true));
                    Task.Run(() => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true));
                    var y = nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
                }

                // Only the causal-with-mask call is exempt: other calls in the lambda are reported as usual.
                void Valid(Tensor q) =>
                    Xunit.Assert.Throws<ArgumentException>(() => nn.functional.{|SDPA001:scaled_dot_product_attention|}(q, q, q));

                // A method that merely has Throws in its name but gets no lambda.
                static Tensor ThrowsLater(Tensor q, Tensor m) => nn.functional.{|SDPA004:scaled_dot_product_attention|}(q, q, q, m, is_casual: true);
            }
            """);
    }
}
