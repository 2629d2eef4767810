using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace ChunkedAttention.CodeFixes;

/// <summary>
/// How a file lays out its lines, read from the file itself (never from formatting options, which in
/// most repositories are not configured and default to 4 spaces and the OS line ending).
/// </summary>
internal static class LineLayout
{
    /// <summary>The line break of <paramref name="line"/>; for a last line without one, the file's first line break.</summary>
    public static string EndOfLine(SourceText text, TextLine line)
    {
        if (line.EndIncludingLineBreak > line.End)
        {
            return text.ToString(TextSpan.FromBounds(line.End, line.EndIncludingLineBreak));
        }

        return FirstEndOfLine(text);
    }

    /// <summary>The file's first line break, or the OS one in a file of one line.</summary>
    public static string FirstEndOfLine(SourceText text)
    {
        foreach (var line in text.Lines)
        {
            if (line.EndIncludingLineBreak > line.End)
            {
                return text.ToString(TextSpan.FromBounds(line.End, line.EndIncludingLineBreak));
            }
        }

        return Environment.NewLine;
    }

    /// <summary>The whitespace after the last line break of a token's leading trivia: its indentation.</summary>
    public static string Indentation(SyntaxTriviaList leading)
    {
        var result = string.Empty;
        for (var i = leading.Count - 1; i >= 0 && leading[i].IsKind(SyntaxKind.WhitespaceTrivia); i--)
        {
            result = leading[i].ToString() + result;
        }

        return result;
    }
}
