#if NETSTANDARD2_0
namespace System.Runtime.CompilerServices;

/// <summary>
/// Lets the netstandard2.0 build declare <c>init</c> accessors and records (the type ships with .NET 5+).
/// Compilers recognise it by name, so consumers of either build see the same API.
/// </summary>
[Microsoft.CodeAnalysis.Embedded]
internal static class IsExternalInit
{
}
#endif
