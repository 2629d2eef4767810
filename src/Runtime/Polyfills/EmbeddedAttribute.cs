#if NETSTANDARD2_0
namespace Microsoft.CodeAnalysis;

/// <summary>
/// Marks this build's polyfills as private to this assembly: the C# compiler ignores types carrying it when it
/// reads this assembly as a reference, even through InternalsVisibleTo, so the polyfills never clash with the
/// real types of a newer framework (tests on .NET 10 compile against this build).
/// </summary>
[Embedded]
[System.AttributeUsage(System.AttributeTargets.All)]
internal sealed class EmbeddedAttribute : System.Attribute
{
}
#endif
