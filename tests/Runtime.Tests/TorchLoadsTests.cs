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
}
