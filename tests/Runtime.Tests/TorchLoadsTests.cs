using System.Reflection;
using System.Runtime.Versioning;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

public class TorchLoadsTests
{
    [Fact]
    public void NativeSdpaRunsOnCpu()
    {
        using var q = randn(2, 3, 5, 4);
        using var o = nn.functional.scaled_dot_product_attention(q, q, q);
        Assert.Equal(new long[] { 2, 3, 5, 4 }, o.shape);
    }

    [Fact]
    public void TheRuntimeUnderTestIsTheBuildThisProjectTests()
    {
#if RUNTIME_NETSTANDARD
        const string expected = ".NETStandard,Version=v2.0";
#else
        const string expected = ".NETCoreApp,Version=v8.0";
#endif
        var built = typeof(ChunkedSdpa).Assembly.GetCustomAttribute<TargetFrameworkAttribute>();
        Assert.Equal(expected, built?.FrameworkName);
    }
}
