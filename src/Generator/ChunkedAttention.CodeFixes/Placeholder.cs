namespace ChunkedAttention.CodeFixes;

internal static class Placeholder
{
}
