namespace ChunkedAttention.Generator.Model;

/// <summary>Everything the emitter needs about one <c>[ChunkedAttention]</c> type.</summary>
/// <param name="Hierarchy">Namespace and the chain of (partial) types to re-declare.</param>
/// <param name="Settings">The wrapper's options: the attribute's settings (valid) and the options-only members.</param>
/// <param name="MethodHidesInheritedMember">
/// Whether a base type has an accessible non-method member named like the wrapper, which the
/// wrapper hides (so it is declared <c>new</c>). Base methods of that name are overloads, not hidden.
/// </param>
/// <param name="FieldHidesInheritedMember">
/// Whether a base type has an accessible member named like the options field, which it hides.
/// </param>
internal sealed record TargetSpec(
    HierarchyInfo Hierarchy, ChunkedAttentionSettings Settings, bool MethodHidesInheritedMember, bool FieldHidesInheritedMember);
