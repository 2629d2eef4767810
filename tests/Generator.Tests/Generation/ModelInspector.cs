using System;
using System.Collections;
using System.Collections.Generic;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Walks a pipeline output's object graph and fails on anything that would pin a compilation in
/// the driver's cache or defeat value equality.
/// </summary>
internal static class ModelInspector
{
    private static readonly Type[] Forbidden =
    {
        typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Location),
        typeof(Compilation), typeof(SemanticModel), typeof(AttributeData),
    };

    public static void AssertHoldsNoCompilerObjects(object? value, string step) =>
        Visit(value, step, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static void Visit(object? value, string path, HashSet<object> seen)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum)
        {
            return;
        }

        Type type = value.GetType();
        foreach (Type forbidden in Forbidden)
        {
            Assert.False(forbidden.IsAssignableFrom(type), $"{path} holds a {type.Name}.");
        }

        if (!type.IsValueType && !seen.Add(value))
        {
            return;
        }

        if (value is IEnumerable items)
        {
            int index = 0;
            foreach (object? item in items)
            {
                Visit(item, $"{path}[{index++}]", seen);
            }

            return;
        }

        if (value is ITuple tuple)
        {
            for (int i = 0; i < tuple.Length; i++)
            {
                Visit(tuple[i], $"{path}.Item{i + 1}", seen);
            }

            return;
        }

        foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            Visit(field.GetValue(value), $"{path}.{field.Name}", seen);
        }
    }
}
