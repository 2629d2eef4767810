namespace ChunkedAttention.Generator.Model;

/// <summary>One file the generator adds.</summary>
/// <param name="HintName">The hint name, unique per type.</param>
/// <param name="Text">The C# source.</param>
internal sealed record GeneratedSource(string HintName, string Text);
