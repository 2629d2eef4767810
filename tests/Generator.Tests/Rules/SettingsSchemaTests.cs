using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using ChunkedAttention.Generator.Analysis;
using ChunkedAttention.Generator.Rules;
using ChunkedAttention.Generator.Tests.Generation;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;
using static TorchSharp.torch;

namespace ChunkedAttention.Generator.Tests.Rules;

/// <summary>
/// The generator's one description of the settings (<see cref="SettingsSchema"/>) against the runtime it drives:
/// the same members, the same defaults, and the same validity rules, read from the runtime assembly itself.
/// </summary>
public sealed class SettingsSchemaTests
{
    // Boundary values of every setting: the edges of its type and of its rule.
    private static readonly Dictionary<string, long[]> BoundaryValues = new()
    {
        [nameof(ChunkedAttentionOptions.ChunkSize)] = new long[] { int.MinValue, -1, 0, 1, int.MaxValue },
        [nameof(ChunkedAttentionOptions.KeyChunkSize)] = new long[] { int.MinValue, -1, 0, 1, int.MaxValue },
        [nameof(ChunkedAttentionOptions.MaxScoreElements)] = new long[] { long.MinValue, -1, 0, 1, long.MaxValue },
        [nameof(ChunkedAttentionOptions.Devices)] = new long[] { 0, 1, 2, 4, 7, 8 },
        [nameof(ChunkedAttentionOptions.TryNativeFirst)] = new long[] { 0, 1 },
    };

    [Fact]
    public void Options_members_are_the_runtime_options_settable_properties()
    {
        string[] runtime = typeof(ChunkedAttentionOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(property => property.SetMethod is { IsPublic: true })
            .Select(property => property.Name)
            .OrderBy(name => name, StringComparer.Ordinal)
            .ToArray();

        Assert.Equal(runtime, SettingsSchema.OptionsMembers.Select(setting => setting.Name).OrderBy(name => name, StringComparer.Ordinal));
    }

    [Fact]
    public void Attribute_settings_are_the_runtime_attribute_settable_properties()
    {
        string[] runtime = typeof(ChunkedAttentionAttribute).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(property => property.SetMethod is { IsPublic: true })
            .Select(property => property.Name)
            .OrderBy(name => name, StringComparer.Ordinal)
            .ToArray();

        Assert.Equal(runtime, SettingsSchema.AttributeSettings.Select(setting => setting.Name).OrderBy(name => name, StringComparer.Ordinal));
        Assert.DoesNotContain(SettingsSchema.SkipDeviceCheck, SettingsSchema.AttributeSettings);
    }

    [Fact]
    public void Defaults_equal_the_runtime_attribute_and_options_defaults()
    {
        var attribute = new ChunkedAttentionAttribute();
        foreach (Setting setting in SettingsSchema.OptionsMembers)
        {
            Assert.Equal(AsLong(Property<ChunkedAttentionOptions>(setting).GetValue(ChunkedAttentionOptions.Default)), setting.Default);
            Assert.Equal(AsLong(Property<ChunkedAttentionOptions>(setting).GetValue(new ChunkedAttentionOptions())), setting.Default);
            if (setting.IsAttributeSetting)
            {
                Assert.Equal(AsLong(Property<ChunkedAttentionAttribute>(setting).GetValue(attribute)), setting.Default);
            }
        }
    }

    [Fact]
    public void Options_constructor_takes_every_member_by_its_parameter_name_with_the_same_default()
    {
        // The form emitted code uses below C# 9 (init-only setters need C# 9).
        ParameterInfo[] parameters = typeof(ChunkedAttentionOptions).GetConstructors()
            .Select(constructor => constructor.GetParameters())
            .Single(candidate => candidate.Length > 0);

        foreach (Setting setting in SettingsSchema.OptionsMembers)
        {
            ParameterInfo parameter = Assert.Single(parameters, p => p.Name == setting.ParameterName);
            Assert.True(parameter.HasDefaultValue, setting.ParameterName);
            Assert.Equal(setting.Default, AsLong(parameter.DefaultValue));
        }
    }

    [Fact]
    public void Wrapper_options_skip_the_device_check_and_keep_every_attribute_default()
    {
        foreach (Setting setting in SettingsSchema.OptionsMembers)
        {
            Assert.Equal(setting == SettingsSchema.SkipDeviceCheck ? 1 : setting.Default, Model.ChunkedAttentionSettings.Initial[setting]);
        }
    }

    [Fact]
    public async Task Runtime_validation_throws_exactly_where_SDPA003_reports_and_no_code_is_generated()
    {
        // One type per (setting, boundary value): the analyzer, the generator and the runtime see the same values.
        var cases = new List<(string Type, Setting Setting, long Value)>();
        var source = new System.Text.StringBuilder("using ChunkedAttention;\nnamespace Boundaries\n{\n");
        foreach (Setting setting in SettingsSchema.AttributeSettings)
        {
            foreach (long value in BoundaryValues[setting.Name])
            {
                string type = "Case" + cases.Count.ToString(CultureInfo.InvariantCulture);
                cases.Add((type, setting, value));
                source.Append("    [ChunkedAttention(").Append(setting.Name).Append(" = ").Append(SourceLiteral(setting, value))
                    .Append(")] public partial class ").Append(type).Append(" { }\n");
            }
        }

        source.Append("}\n");
        GeneratorRun run = GeneratorHarness.Run(GeneratorHarness.Compile(new[] { source.ToString() }));
        Assert.Empty(GeneratorHarness.Problems(run.OutputCompilation));
        HashSet<string> generated = run.Result.GeneratedSources.Select(s => s.HintName.Split('.')[1]).ToHashSet(StringComparer.Ordinal);

        ImmutableArray<Diagnostic> diagnostics = await run.OutputCompilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ChunkedAttentionAttributeAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();
        HashSet<string> reported = diagnostics
            .Where(d => d.Id == DiagnosticDescriptors.InvalidSettingId)
            .Select(d => d.Location.SourceTree!.GetRoot().FindNode(d.Location.SourceSpan)
                .FirstAncestorOrSelf<Microsoft.CodeAnalysis.CSharp.Syntax.TypeDeclarationSyntax>()!.Identifier.ValueText)
            .ToHashSet(StringComparer.Ordinal);

        using var scope = NewDisposeScope();
        Tensor query = zeros(1, 1, 4, 8);
        foreach ((string type, Setting setting, long value) in cases)
        {
            bool runtimeRejects = RuntimeRejects(setting, value, query);
            string what = $"{setting.Name} = {value}";
            Assert.True(runtimeRejects == (setting.Problem(value) is not null), $"{what}: runtime rejects = {runtimeRejects}, schema rule disagrees");
            Assert.True(runtimeRejects == reported.Contains(type), $"{what}: runtime rejects = {runtimeRejects}, SDPA003 reported = {reported.Contains(type)}");
            Assert.True(runtimeRejects != generated.Contains(type), $"{what}: runtime rejects = {runtimeRejects}, code generated = {generated.Contains(type)}");
        }
    }

    // Options validation runs before any work; Plan is the lightest public entry that runs it.
    private static bool RuntimeRejects(Setting setting, long value, Tensor query)
    {
        var options = new ChunkedAttentionOptions();
        PropertyInfo property = Property<ChunkedAttentionOptions>(setting);
        property.SetValue(options, FromLong(property.PropertyType, value));
        try
        {
            ChunkedSdpa.Plan(query, query, options);
            return false;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }

    private static string SourceLiteral(Setting setting, long value) => setting.Type switch
    {
        SettingType.Boolean => value != 0 ? "true" : "false",
        SettingType.Devices => "(AttentionDevices)" + value.ToString(CultureInfo.InvariantCulture),
        SettingType.Int64 => value == long.MinValue ? "long.MinValue" : value.ToString(CultureInfo.InvariantCulture) + "L",
        _ => value == int.MinValue ? "int.MinValue" : value.ToString(CultureInfo.InvariantCulture),
    };

    private static PropertyInfo Property<T>(Setting setting) =>
        typeof(T).GetProperty(setting.Name, BindingFlags.Public | BindingFlags.Instance)
        ?? throw new InvalidOperationException($"{typeof(T).Name} has no property {setting.Name}.");

    private static long AsLong(object? value) => value switch
    {
        bool flag => flag ? 1 : 0,
        Enum flags => Convert.ToInt64(flags, CultureInfo.InvariantCulture),
        _ => Convert.ToInt64(value, CultureInfo.InvariantCulture),
    };

    private static object FromLong(Type type, long value) =>
        type == typeof(bool) ? value != 0
        : type.IsEnum ? Enum.ToObject(type, value)
        : Convert.ChangeType(value, type, CultureInfo.InvariantCulture);
}
