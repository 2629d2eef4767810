using System;
using System.Composition;
using System.Linq;
using ChunkedAttention.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Xunit;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

/// <summary>What IDEs and dotnet format need to load and batch the fixes.</summary>
public class CodeFixProviderShapeTests
{
    public static TheoryData<Type> Providers() => new()
    {
        typeof(UseChunkedAttentionCodeFixProvider),
        typeof(MakePartialCodeFixProvider),
    };

    [Theory]
    [MemberData(nameof(Providers))]
    public void Provider_is_exported_shared_and_creatable(Type type)
    {
        var export = type.GetCustomAttributes(typeof(ExportCodeFixProviderAttribute), false).Cast<ExportCodeFixProviderAttribute>().Single();
        Assert.Contains(LanguageNames.CSharp, export.Languages);
        Assert.Single(type.GetCustomAttributes(typeof(SharedAttribute), false));
        Assert.True(type.IsPublic);
        Assert.NotNull(type.GetConstructor(Type.EmptyTypes));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public void Provider_supports_fix_all_in_document_project_and_solution(Type type)
    {
        var provider = (CodeFixProvider)Activator.CreateInstance(type)!;
        var fixAll = provider.GetFixAllProvider();

        Assert.NotNull(fixAll);
        Assert.NotSame(WellKnownFixAllProviders.BatchFixer, fixAll);
        Assert.Equal(new[] { FixAllScope.Document, FixAllScope.Project, FixAllScope.Solution }, fixAll!.GetSupportedFixAllScopes());
        Assert.NotEmpty(provider.FixableDiagnosticIds);
    }

    [Fact]
    public void Every_call_diagnostic_and_SDPA002_have_a_fix_and_the_others_do_not()
    {
        var fixable = new CodeFixProvider[] { new UseChunkedAttentionCodeFixProvider(), new MakePartialCodeFixProvider() }
            .SelectMany(p => p.FixableDiagnosticIds)
            .OrderBy(id => id, StringComparer.Ordinal);
        Assert.Equal(new[] { "SDPA001", "SDPA002", "SDPA004", "SDPA005" }, fixable);
    }
}
