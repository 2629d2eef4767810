namespace ChunkedAttention.Generator.Generation;

/// <summary>How the emitted code builds its <c>ChunkedAttentionOptions</c>.</summary>
internal enum OptionsConstruction
{
    /// <summary>
    /// An object initializer over the init-only properties: the natural form, used from C# 9 on
    /// (init-only setters need C# 9).
    /// </summary>
    ObjectInitializer,

    /// <summary>
    /// The runtime's constructor taking every setting (<c>chunkSize</c>, <c>keyChunkSize</c>,
    /// <c>devices</c>, <c>maxScoreElements</c>, <c>tryNativeFirst</c>) with named arguments: for
    /// consumers below C# 9.
    /// </summary>
    Constructor,
}

/// <summary>The runtime's <c>ChunkedAttentionOptions</c> members the emitted code sets, in one order.</summary>
internal static class OptionsMembers
{
    /// <summary>The settings constructor's parameter names.</summary>
    public static readonly string[] ConstructorParameters =
    {
        "chunkSize", "keyChunkSize", "devices", "maxScoreElements", "tryNativeFirst",
    };

    /// <summary>The init-only property names, in the same order.</summary>
    public static readonly string[] Properties =
    {
        "ChunkSize", "KeyChunkSize", "Devices", "MaxScoreElements", "TryNativeFirst",
    };
}
