using System;
using System.Collections.Concurrent;

namespace ChunkedAttention.Generator.Analysis;

/// <summary>
/// Message arguments that compare equal across analysis passes. Roslyn compares a diagnostic's message arguments
/// by reference, so a string formatted afresh on each pass makes the IDE see two diagnostics where there is one
/// (and offer the fix twice). Every argument goes through <see cref="Stable"/>, which hands back one instance
/// per text for the life of the process.
/// </summary>
/// <remarks>
/// A table of its own rather than <see cref="string.Intern(string)"/>: the runtime's intern table takes a
/// process-wide lock, and in a compiler running analyzers on several threads the waits on it showed up in the
/// analyzers' time. Reads here take no lock. Like the intern table it only grows, by one entry per distinct
/// message argument (a type name, a list of steps).
/// </remarks>
internal static class DiagnosticArguments
{
    private static readonly ConcurrentDictionary<string, string> Instances = new(StringComparer.Ordinal);

    /// <summary>The process-wide instance of <paramref name="text"/>.</summary>
    /// <param name="text">A message argument.</param>
    public static string Stable(string text) => Instances.GetOrAdd(text, text);
}
