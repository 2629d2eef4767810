using System;
using System.IO;
using ChunkedAttention.Runtime.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Runtime.Tests;

/// <summary>
/// A failure inside backward (called by autograd from native code) neither ends the process nor passes silently:
/// the caller's <c>backward()</c> throws and the reason is on standard error. Runs alone (it redirects Console.Error).
/// </summary>
[Collection(EnvironmentCollection.Name)]
public class TrainingFailureTests
{
    [Fact]
    public void AnInputModifiedInPlaceBeforeBackwardMakesBackwardThrowWithTheReasonOnStandardError()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(215);
        var leaf = q.clone().requires_grad_(true);
        var query = leaf * 1.0; // a non-leaf that can be modified in place
        var output = SmallChunks.Chunked(query, k, v, keyChunk: 4);
        using (no_grad())
        {
            query.add_(1.0);
        }

        AssertBackwardFails(output, "modified by an inplace operation");
        Assert.Null(leaf.grad);
    }

    [Fact]
    public void AnOutputModifiedInPlaceBeforeBackwardIsRefusedAsByFusedKernels()
    {
        // The output is saved for backward (D = rowsum(dO * O)), as PyTorch's fused flash kernels save theirs.
        // (Native's CPU math path keeps the probabilities instead and accepts it.)
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionInputs.Random(216);
        var leaf = q.clone().requires_grad_(true);
        var output = SmallChunks.Chunked(leaf, k, v, keyChunk: 4).mul_(2.0);
        AssertBackwardFails(output, "modified by an inplace operation");
    }

    private static void AssertBackwardFails(Tensor output, string reason)
    {
        var standardError = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            var error = Assert.ThrowsAny<Exception>(() => output.sum().backward());
            Assert.Contains("invalid gradient", error.Message);
        }
        finally
        {
            Console.SetError(standardError);
        }

        Assert.Contains("ChunkedAttention: backward of chunked attention failed", captured.ToString());
        Assert.Contains(reason, captured.ToString());
    }
}
