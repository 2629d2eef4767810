using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Code that is meant to throw: inside a lambda or anonymous method passed as an argument to a method
/// whose name contains <c>Throws</c> (xunit <c>Assert.Throws*</c>, NUnit <c>Assert.Throws*</c>, MSTest
/// <c>Assert.ThrowsException*</c>). TorchSharp's own tests call SDPA with a causal flag and a mask there
/// on purpose, to check that it throws, so SDPA004 (and the fix that would stop the throw) is noise.
/// </summary>
internal static class ExpectedThrowContext
{
    private const string ThrowsMarker = "Throws";

    /// <summary>True when <paramref name="operation"/> is inside such a lambda, at any depth.</summary>
    public static bool Contains(IOperation operation)
    {
        for (var current = operation.Parent; current is not null; current = current.Parent)
        {
            if (current is IAnonymousFunctionOperation function && IsArgumentOfThrowsMethod(function))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsArgumentOfThrowsMethod(IAnonymousFunctionOperation function)
    {
        var node = function.Parent;
        while (node is IDelegateCreationOperation or IConversionOperation)
        {
            node = node.Parent;
        }

        return node is IArgumentOperation { Parent: IInvocationOperation invocation }
            && invocation.TargetMethod.Name.IndexOf(ThrowsMarker, StringComparison.Ordinal) >= 0;
    }
}
