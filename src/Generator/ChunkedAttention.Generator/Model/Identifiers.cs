using Microsoft.CodeAnalysis.CSharp;

namespace ChunkedAttention.Generator.Model;

/// <summary>C# identifier helpers.</summary>
internal static class Identifiers
{
    /// <summary>Prefixes <c>@</c> when <paramref name="name"/> is a reserved keyword.</summary>
    /// <param name="name">An identifier as it appears in metadata.</param>
    public static string Escape(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None ? "@" + name : name;
}
