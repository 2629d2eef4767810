using System;
using System.Collections.Generic;
using Xunit;

namespace ChunkedAttention.Runtime.Tests.Support;

/// <summary>
/// Tests that change CHUNKED_ATTENTION* (every runtime call reads them) or measure process-wide figures.
/// xunit runs a collection with DisableParallelization after all parallel collections, one test at a time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EnvironmentCollection
{
    public const string Name = "Process-wide state (environment variables, memory)";
}

/// <summary>Sets environment variables for a test and restores the previous values on dispose.</summary>
internal sealed class EnvironmentScope : IDisposable
{
    public const string Mode = "CHUNKED_ATTENTION";
    public const string ChunkSize = "CHUNKED_ATTENTION_CHUNK_SIZE";

    private readonly Dictionary<string, string?> _saved = new();

    public EnvironmentScope Set(string name, string? value)
    {
        if (!_saved.ContainsKey(name))
        {
            _saved[name] = Environment.GetEnvironmentVariable(name);
        }

        Environment.SetEnvironmentVariable(name, value);
        return this;
    }

    public void Dispose()
    {
        foreach (var (name, value) in _saved)
        {
            Environment.SetEnvironmentVariable(name, value);
        }
    }
}
