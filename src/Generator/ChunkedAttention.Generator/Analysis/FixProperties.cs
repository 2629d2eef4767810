using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// What an analyzer decided for the code fix, passed through <see cref="Diagnostic.Properties"/> so the fixer
/// does not decide again: a diagnostic carries <see cref="HostType"/> only when "Use chunked attention" applies.
/// </summary>
internal static class FixProperties
{
    /// <summary>
    /// The documentation comment ID (<c>T:Namespace.Outer.Inner</c>) of the type that receives
    /// <c>[ChunkedAttention]</c> and the wrapper; absent where the fix cannot produce compiling code.
    /// </summary>
    public const string HostType = "ChunkedAttention.HostType";

    /// <summary>The properties of a diagnostic whose fix makes <paramref name="host"/> hold the wrapper.</summary>
    /// <param name="host">The type.</param>
    public static ImmutableDictionary<string, string?> ForHost(INamedTypeSymbol host) =>
        ImmutableDictionary<string, string?>.Empty.Add(HostType, DocumentationCommentId.CreateDeclarationId(host));
}
