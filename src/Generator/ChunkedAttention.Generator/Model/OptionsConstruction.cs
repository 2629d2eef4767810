namespace ChunkedAttention.Generator.Model;

/// <summary>How the emitted code builds its <c>ChunkedAttentionOptions</c>.</summary>
internal enum OptionsConstruction
{
    /// <summary>
    /// An object initializer over the init-only properties: the natural form, used from C# 9 on
    /// (init-only setters need C# 9).
    /// </summary>
    ObjectInitializer,

    /// <summary>
    /// The runtime's constructor taking every options member by name (<c>chunkSize: ..., skipDeviceCheck: true</c>):
    /// for consumers below C# 9.
    /// </summary>
    Constructor,
}
