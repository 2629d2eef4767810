using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ChunkedAttention.Generator.Tests.Robustness;

/// <summary>The ways a source is damaged or twisted, each one a state real code passes through while typed.</summary>
internal enum MutationKind
{
    /// <summary>The file ends at a random character (half-typed code, a paste cut short).</summary>
    Truncate,

    /// <summary>One token disappears.</summary>
    DeleteToken,

    /// <summary>One token appears twice.</summary>
    DuplicateToken,

    /// <summary>One token is replaced by another token of the same file.</summary>
    ReplaceToken,

    /// <summary>A line disappears.</summary>
    DeleteLine,

    /// <summary>A run of lines appears twice.</summary>
    DuplicateLines,

    /// <summary>A fragment that opens or closes something (a brace, a string, a comment, a directive) is inserted.</summary>
    InsertFragment,

    /// <summary>[ChunkedAttention] gets arguments of wrong types, out of range, unknown or duplicated.</summary>
    WrongAttributeArguments,

    /// <summary>[ChunkedAttention] is added once more, or to a type or member where it does not belong.</summary>
    DuplicateAttribute,

    /// <summary>'partial' is removed from, or added to, a type declaration.</summary>
    TogglePartial,

    /// <summary>A type's members are split into a second partial declaration, placed oddly.</summary>
    SplitPartialType,

    /// <summary>A direct SDPA call (in one of its forms) is inserted into a body.</summary>
    InsertSdpaCall,

    /// <summary>An SDPA call is renamed (to a look-alike, the generated wrapper, or back).</summary>
    RenameCall,

    /// <summary>A whole file is duplicated (every type declared twice).</summary>
    DuplicateFile,
}

/// <summary>
/// One mutation. The integers choose the file, the place and the variant; they are reduced modulo
/// whatever they index at application time, so any value is valid and shrinking them toward 0 gives
/// the simplest failing case.
/// </summary>
internal readonly record struct Mutation(MutationKind Kind, int File, int Where, int What)
{
    public override string ToString() => $"{Kind}(file {File}, at {Where}, variant {What})";
}

/// <summary>Applies <see cref="Mutation"/>s to a set of source files.</summary>
internal static class SourceMutator
{
    /// <summary>Attribute argument lists of every wrong kind the compiler lets a user type.</summary>
    public static readonly string[] AttributeArguments =
    {
        "(\"1024\")",
        "(1.5)",
        "(null)",
        "(typeof(int))",
        "(new[] { 1, 2 })",
        "(0)",
        "(-1)",
        "(int.MaxValue)",
        "(int.MinValue)",
        "(1, 2, 3, 4, 5)",
        "(chunkSize: 64)",
        "(ChunkSize = \"big\")",
        "(ChunkSize = 1 << 40)",
        "(ChunkSize = 2147483648)",
        "(ChunkSize = default)",
        "(ChunkSize = ChunkSize)",
        "(ChunkSize = 1, ChunkSize = 2)",
        "(ChunkSize = 0, KeyChunkSize = -1, MaxScoreElements = -1, Devices = AttentionDevices.None)",
        "(KeyChunkSize = int.MinValue)",
        "(MaxScoreElements = long.MaxValue)",
        "(MaxScoreElements = -9223372036854775808)",
        "(MaxScoreElements = 1.0)",
        "(Devices = 3)",
        "(Devices = (AttentionDevices)(-1))",
        "(Devices = (AttentionDevices)1024 | AttentionDevices.Cpu)",
        "(Devices = AttentionDevices.All & ~AttentionDevices.All)",
        "(Devices = Missing.Value)",
        "(Devices = ChunkedAttention.AttentionDevices.Cuda, ChunkSize = 'a')",
        "(Unknown = 3)",
        "(ChunkSize = nameof(ChunkSize))",
        "(ChunkSize = sizeof(long))",
        "(ChunkSize = (int)3.9)",
        "(ChunkSize = checked(int.MaxValue + 1))",
        "(ChunkSize = 1024,)",
        "(,)",
        "(",
        "()",
        "(ChunkSize = )",
        "(ChunkSize = x => x)",
        "(ChunkSize = 64) ]",
    };

    /// <summary>Fragments that unbalance or redirect the parser.</summary>
    public static readonly string[] Fragments =
    {
        "{", "}", "(", ")", "[", "]", ";", ",", "\"", "@\"", "\"\"\"", "$\"{", "'", "/*", "*/", "//", "///", "<", ">",
        "\n#if DEBUG\n", "\n#endif\n", "\n#else\n", "\n#region r\n", "\n#nullable disable\n", "\n#line hidden\n",
        "\n#pragma warning disable\n", "\n#define X\n", "\n#error stop\n",
        "partial ", "static ", "file ", "record ", "struct ", "class ", "interface ", "namespace N;", "namespace N {",
        "using static TorchSharp.torch.nn.functional;", "using F = TorchSharp.torch.nn.functional;", "global::",
        "[ChunkedAttention]", "[ChunkedAttention(", "<T> where T : struct", "unsafe ", "async ", "await ", "=>", "?.",
        "\u00e9", "\u0000", "\uFEFF", "\\u0041", "@class", "__arglist", "default!", "null!", "..", "^1",
        "ChunkedScaledDotProductAttention", "scaled_dot_product_attention", "ChunkedScaledDotProductAttentionOptions",
    };

    /// <summary>Direct SDPA calls in their different spellings, with the argument shapes that matter to SDPA004.</summary>
    public static readonly string[] SdpaCalls =
    {
        "TorchSharp.torch.nn.functional.scaled_dot_product_attention(q, k, v)",
        "global::TorchSharp.torch.nn.functional.scaled_dot_product_attention(q, k, v, null, 0.0, true)",
        "torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: m, is_casual: true)",
        "nn.functional.scaled_dot_product_attention(query: q, key: k, value: v, p: 0.1)",
        "F.scaled_dot_product_attention(q, k, v, is_casual: 1 == 1, attn_mask: m)",
        "scaled_dot_product_attention(q, k, v, default, is_casual: false)",
        "TorchSharp.torch.nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true, attn_mask: (TorchSharp.torch.Tensor?)null)",
        "TorchSharp.torch.nn.functional.scaled_dot_product_attention(q, k)",
        "TorchSharp.torch.nn.functional.scaled_dot_product_attention(q, k, v, scale: 0.5)",
        "TorchSharp.torch.nn.functional.scaled_dot_product_attention",
        "nameof(TorchSharp.torch.nn.functional.scaled_dot_product_attention)",
        "((System.Func<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor?, double, bool, TorchSharp.torch.Tensor>)TorchSharp.torch.nn.functional.scaled_dot_product_attention)(q, k, v, null, 0, false)",
    };

    private static readonly string[] CallNames =
    {
        "ChunkedScaledDotProductAttention", "scaled_dot_product_attention", "Scaled_dot_product_attention", "sdpa",
        "ChunkedScaledDotProductAttentionOptions", "scaled_dot_product_attention<int>", "@scaled_dot_product_attention",
    };

    private static readonly Regex AttributePattern = new(
        @"\[\s*(global::)?(ChunkedAttention\.)?ChunkedAttention(Attribute)?\b(\s*\([^\]\)]*\))?",
        RegexOptions.CultureInvariant);

    /// <summary>Applies <paramref name="mutations"/> in order.</summary>
    public static IReadOnlyList<SourceFile> Apply(IReadOnlyList<SourceFile> files, IEnumerable<Mutation> mutations)
    {
        var current = files.ToList();
        foreach (var mutation in mutations)
        {
            current = Apply(current, mutation);
        }

        return current;
    }

    private static List<SourceFile> Apply(List<SourceFile> files, Mutation mutation)
    {
        if (files.Count == 0)
        {
            return files;
        }

        var index = mutation.File % files.Count;
        var file = files[index];
        var result = files.ToList();
        switch (mutation.Kind)
        {
            case MutationKind.DuplicateFile:
                result.Add(file with { Path = System.IO.Path.ChangeExtension(file.Path, null) + ".Copy" + result.Count + ".cs" });
                return result;
            case MutationKind.SplitPartialType:
                {
                    var (changed, extra) = SplitPartialType(file.Text, mutation.Where, mutation.What);
                    result[index] = file with { Text = changed };
                    if (extra is not null)
                    {
                        result.Add(new SourceFile(System.IO.Path.ChangeExtension(file.Path, null) + ".Part" + result.Count + ".cs", extra));
                    }

                    return result;
                }

            default:
                result[index] = file with { Text = MutateText(file.Text, mutation) };
                return result;
        }
    }

    private static string MutateText(string text, Mutation mutation)
    {
        int where = mutation.Where, what = mutation.What;
        switch (mutation.Kind)
        {
            case MutationKind.Truncate:
                return text.Substring(0, where % (text.Length + 1));
            case MutationKind.DeleteToken:
                return WithToken(text, where, (token, sb) => sb.Remove(token.SpanStart, token.Span.Length));
            case MutationKind.DuplicateToken:
                return WithToken(text, where, (token, sb) => sb.Insert(token.Span.End, " " + token.Text));
            case MutationKind.ReplaceToken:
                {
                    var tokens = Tokens(text);
                    if (tokens.Count == 0)
                    {
                        return text;
                    }

                    var target = tokens[where % tokens.Count];
                    var replacement = tokens[what % tokens.Count];
                    return text.Remove(target.SpanStart, target.Span.Length).Insert(target.SpanStart, replacement.Text);
                }

            case MutationKind.DeleteLine:
                {
                    var lines = text.Split('\n').ToList();
                    lines.RemoveAt(where % lines.Count);
                    return string.Join("\n", lines);
                }

            case MutationKind.DuplicateLines:
                {
                    var lines = text.Split('\n').ToList();
                    var start = where % lines.Count;
                    var count = Math.Min(1 + (what % 8), lines.Count - start);
                    lines.InsertRange(start + count, lines.GetRange(start, count));
                    return string.Join("\n", lines);
                }

            case MutationKind.InsertFragment:
                {
                    var boundaries = TokenBoundaries(text);
                    var at = boundaries[where % boundaries.Count];
                    return text.Insert(at, Fragments[what % Fragments.Length]);
                }

            case MutationKind.WrongAttributeArguments:
                {
                    var arguments = AttributeArguments[what % AttributeArguments.Length];
                    var matches = AttributePattern.Matches(text);
                    if (matches.Count > 0)
                    {
                        var match = matches[where % matches.Count];
                        var name = match.Value.Substring(0, match.Value.Length - match.Groups[4].Length);
                        return text.Remove(match.Index, match.Length).Insert(match.Index, name + arguments);
                    }

                    return InsertBeforeDeclaration(text, where, "[ChunkedAttention.ChunkedAttention" + arguments + "]");
                }

            case MutationKind.DuplicateAttribute:
                {
                    var attribute = (what % 4) switch
                    {
                        0 => "[ChunkedAttention.ChunkedAttention]",
                        1 => "[ChunkedAttention.ChunkedAttention(2), ChunkedAttention.ChunkedAttention]",
                        2 => "[global::ChunkedAttention.ChunkedAttentionAttribute(ChunkSize = 8)]",
                        _ => "[ChunkedAttention.ChunkedAttention(Devices = ChunkedAttention.AttentionDevices.All)]",
                    };
                    return InsertBeforeDeclaration(text, where, attribute, includeMembers: (what / 4) % 2 == 1);
                }

            case MutationKind.TogglePartial:
                {
                    var declarations = TypeDeclarations(text);
                    if (declarations.Count == 0)
                    {
                        return text;
                    }

                    var declaration = declarations[where % declarations.Count];
                    var partial = declaration.Modifiers.FirstOrDefault(m => m.IsKind(SyntaxKind.PartialKeyword));
                    return partial.IsKind(SyntaxKind.PartialKeyword)
                        ? text.Remove(partial.SpanStart, partial.Span.Length)
                        : text.Insert(declaration.Keyword.SpanStart, "partial ");
                }

            case MutationKind.InsertSdpaCall:
                {
                    var root = CSharpSyntaxTree.ParseText(text).GetRoot();
                    var blocks = root.DescendantNodes().OfType<BlockSyntax>().ToList();
                    var call = SdpaCalls[what % SdpaCalls.Length];
                    if (blocks.Count == 0)
                    {
                        // No body anywhere: a member holding the call, into some type, or at the end.
                        return InsertIntoType(text, where, $"\nTorchSharp.torch.Tensor M{what}(TorchSharp.torch.Tensor q, TorchSharp.torch.Tensor k, TorchSharp.torch.Tensor v, TorchSharp.torch.Tensor? m) => {call};\n");
                    }

                    var block = blocks[where % blocks.Count];
                    var statement = (what / SdpaCalls.Length) % 3 == 0
                        ? $"\n{{ var __r{what} = {call}; }}\n"
                        : $"\n_ = {call};\n";
                    return text.Insert(block.OpenBraceToken.Span.End, statement);
                }

            case MutationKind.RenameCall:
                {
                    var matches = Regex.Matches(text, @"\b(ChunkedScaledDotProductAttention|scaled_dot_product_attention)\b");
                    if (matches.Count == 0)
                    {
                        // No call to rename: some identifier takes one of the names instead.
                        var identifiers = Tokens(text).Where(t => t.IsKind(SyntaxKind.IdentifierToken)).ToList();
                        if (identifiers.Count == 0)
                        {
                            return text;
                        }

                        var identifier = identifiers[where % identifiers.Count];
                        return text.Remove(identifier.SpanStart, identifier.Span.Length).Insert(identifier.SpanStart, CallNames[what % CallNames.Length]);
                    }

                    var match = matches[where % matches.Count];
                    return text.Remove(match.Index, match.Length).Insert(match.Index, CallNames[what % CallNames.Length]);
                }

            default:
                return text;
        }
    }

    private static List<SyntaxToken> Tokens(string text) =>
        CSharpSyntaxTree.ParseText(text).GetRoot().DescendantTokens(descendIntoTrivia: false)
            .Where(t => t.Span.Length > 0)
            .ToList();

    private static string WithToken(string text, int where, Action<SyntaxToken, StringBuilder> edit)
    {
        var tokens = Tokens(text);
        if (tokens.Count == 0)
        {
            return text;
        }

        var builder = new StringBuilder(text);
        edit(tokens[where % tokens.Count], builder);
        return builder.ToString();
    }

    private static List<int> TokenBoundaries(string text)
    {
        var boundaries = new List<int> { 0, text.Length };
        foreach (var token in Tokens(text))
        {
            boundaries.Add(token.SpanStart);
            boundaries.Add(token.Span.End);
        }

        return boundaries.Distinct().OrderBy(b => b).ToList();
    }

    private static List<TypeDeclarationSyntax> TypeDeclarations(string text) =>
        CSharpSyntaxTree.ParseText(text).GetRoot().DescendantNodes().OfType<TypeDeclarationSyntax>().ToList();

    private static string InsertBeforeDeclaration(string text, int where, string attribute, bool includeMembers = false)
    {
        var root = CSharpSyntaxTree.ParseText(text).GetRoot();
        var targets = root.DescendantNodes()
            .Where(n => n is BaseTypeDeclarationSyntax or DelegateDeclarationSyntax
                || (includeMembers && n is MemberDeclarationSyntax and not BaseNamespaceDeclarationSyntax))
            .ToList();
        if (targets.Count == 0)
        {
            return attribute + "\npartial class Added { }\n" + text;
        }

        // Right before the declaration's first modifier or keyword, after its existing attributes.
        var target = targets[where % targets.Count];
        var at = target is MemberDeclarationSyntax member && member.AttributeLists.Count > 0
            ? member.AttributeLists.Last().Span.End
            : target.SpanStart;
        return text.Insert(at, attribute + " ");
    }

    private static string InsertIntoType(string text, int where, string member)
    {
        var declarations = TypeDeclarations(text).Where(d => !d.OpenBraceToken.IsMissing).ToList();
        if (declarations.Count == 0)
        {
            return text + "\nclass AddedAttention\n{" + member + "}\n";
        }

        var declaration = declarations[where % declarations.Count];
        return text.Insert(declaration.OpenBraceToken.Span.End, member);
    }

    /// <summary>
    /// Moves the members of a type from index k on into a second declaration of the same type, in
    /// this file or a new one, reproducing its containers faithfully or with one thing off.
    /// </summary>
    private static (string Changed, string? Extra) SplitPartialType(string text, int where, int what)
    {
        var root = CSharpSyntaxTree.ParseText(text).GetRoot();
        var declarations = root.DescendantNodes().OfType<TypeDeclarationSyntax>()
            .Where(d => !d.OpenBraceToken.IsMissing && !d.CloseBraceToken.IsMissing)
            .ToList();
        if (declarations.Count == 0)
        {
            return (text, null);
        }

        var declaration = declarations[where % declarations.Count];
        var members = declaration.Members;
        var splitAt = members.Count == 0 ? 0 : (where / declarations.Count) % (members.Count + 1);
        var moved = string.Concat(members.Skip(splitAt).Select(m => m.ToFullString()));
        var oddity = what % 6;

        // The part that moves out: same name and type parameters, unless this case twists one thing.
        var keyword = declaration is RecordDeclarationSyntax record
            ? "record" + (record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) ? " struct" : string.Empty)
            : declaration.Keyword.Text;
        if (oddity == 3)
        {
            keyword = keyword == "struct" ? "class" : "struct";
        }

        var typeParameters = oddity == 4
            ? "<TOdd>"
            : declaration.TypeParameterList?.ToString() ?? string.Empty;
        var attribute = oddity == 5 ? "[ChunkedAttention.ChunkedAttention(ChunkSize = 3)] " : string.Empty;
        var part = $"{attribute}partial {keyword} {declaration.Identifier.Text}{typeParameters}\n{{\n{moved}\n}}\n";

        // Containers, innermost first: types become partial too (except in the odd case 2), namespaces are kept (except in case 1).
        foreach (var ancestor in declaration.Ancestors())
        {
            switch (ancestor)
            {
                case TypeDeclarationSyntax container:
                    var containerKeyword = container is RecordDeclarationSyntax r
                        ? "record" + (r.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) ? " struct" : string.Empty)
                        : container.Keyword.Text;
                    part = $"{(oddity == 2 ? string.Empty : "partial ")}{containerKeyword} {container.Identifier.Text}{container.TypeParameterList}\n{{\n{part}}}\n";
                    break;
                case BaseNamespaceDeclarationSyntax ns when oddity != 1:
                    part = $"namespace {ns.Name}\n{{\n{part}}}\n";
                    break;
            }
        }

        // Make the original declaration partial and drop the moved members.
        var edited = text;
        if (members.Count > splitAt)
        {
            var start = members[splitAt].FullSpan.Start;
            edited = edited.Remove(start, members.Last().FullSpan.End - start);
        }

        if (!declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
        {
            edited = edited.Insert(declaration.Keyword.SpanStart, "partial ");
        }

        var usings = string.Concat(root.DescendantNodes().OfType<UsingDirectiveSyntax>().Select(u => u.ToString() + "\n"));
        if ((what / 6) % 2 == 0)
        {
            return (edited, usings + part);
        }

        // Same file, after everything (top-level statements and file-scoped namespaces permitting or not).
        return (edited + "\n" + part, null);
    }
}
