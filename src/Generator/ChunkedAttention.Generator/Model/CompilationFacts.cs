namespace ChunkedAttention.Generator.Model;

/// <summary>
/// What the generator needs from the compilation as a whole (as opposed to each target): read on
/// every compilation change, but value-equal, so an edit that changes neither leaves every
/// downstream step cached.
/// </summary>
/// <param name="Sdpa">TorchSharp's SDPA signature; null without TorchSharp (then no code is generated).</param>
/// <param name="OptionsConstruction">How the emitted code builds its options (depends on the language version).</param>
/// <param name="NullableReferenceTypes">
/// Whether the language version has nullable reference types (C# 8): the emitted file enables them and
/// annotates what may be null; below C# 8 it has neither.
/// </param>
internal sealed record CompilationFacts(SdpaSignature? Sdpa, OptionsConstruction OptionsConstruction, bool NullableReferenceTypes);
