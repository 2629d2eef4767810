namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Message arguments that compare equal across analysis passes. Roslyn compares a diagnostic's message arguments
/// by reference, so a string formatted afresh on each pass makes the IDE see two diagnostics where there is one
/// (and offer the fix twice). Every argument goes through <see cref="Stable"/>, which hands back one instance
/// per text for the life of the process.
/// </summary>
internal static class DiagnosticArguments
{
    /// <summary>The process-wide instance of <paramref name="text"/>.</summary>
    /// <param name="text">A message argument.</param>
    public static string Stable(string text) => string.Intern(text);
}
