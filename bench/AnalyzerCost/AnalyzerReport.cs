using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace ChunkedAttention.AnalyzerCost;

/// <summary>One row of the compiler's <c>/reportanalyzer</c> output: an analyzer or generator type and its time.</summary>
internal sealed record AnalyzerTime(string Kind, string Assembly, string Type, double Seconds);

/// <summary>
/// Reads what the compiler prints with <c>-p:ReportAnalyzer=true</c> (in a detailed MSBuild log):
/// "Total analyzer execution time: X seconds." then rows "time  %  name", an assembly row
/// ("Name, Version=...") followed by its analyzer types; the same for generators. Every type of every
/// assembly is kept, so new analyzers show up without changes here.
/// </summary>
internal static class AnalyzerReport
{
    private static readonly Regex Row = new(@"^\s*(?<time><?\d+(?:\.\d+)?)\s+(?<pct><?\d+)\s+(?<name>\S.*?)\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex NodePrefix = new(@"^\s*\d+(?::\d+)?>", RegexOptions.CultureInvariant);
    private static readonly Regex Total = new(@"Total (?<kind>analyzer|generator) execution time: (?<seconds>[\d.]+) seconds", RegexOptions.CultureInvariant);

    public static (double AnalyzerTotal, double GeneratorTotal, IReadOnlyList<AnalyzerTime> Rows) Parse(string log)
    {
        var rows = new List<AnalyzerTime>();
        double analyzerTotal = 0, generatorTotal = 0;
        string? kind = null;
        string? assembly = null;
        foreach (string rawLine in log.Split('\n'))
        {
            string line = NodePrefix.Replace(rawLine.TrimEnd('\r'), string.Empty);
            var total = Total.Match(line);
            if (total.Success)
            {
                kind = total.Groups["kind"].Value == "analyzer" ? "analyzer" : "generator";
                double seconds = double.Parse(total.Groups["seconds"].Value, CultureInfo.InvariantCulture);
                if (kind == "analyzer")
                {
                    analyzerTotal = seconds;
                }
                else
                {
                    generatorTotal = seconds;
                }

                assembly = null;
                continue;
            }

            if (kind is null)
            {
                continue;
            }

            var row = Row.Match(line);
            if (!row.Success)
            {
                // The header ("Time (s) % Analyzer") and blank lines stay inside a section; anything else ends it.
                if (line.Trim().Length > 0 && !line.Contains("Time (s)", StringComparison.Ordinal) && !line.TrimStart().StartsWith("NOTE:", StringComparison.Ordinal)
                    && !line.Contains("concurrent", StringComparison.Ordinal))
                {
                    kind = null;
                }

                continue;
            }

            string name = row.Groups["name"].Value;
            if (name.Contains(", Version=", StringComparison.Ordinal))
            {
                assembly = name[..name.IndexOf(',', StringComparison.Ordinal)];
                continue;
            }

            if (assembly is not null)
            {
                rows.Add(new AnalyzerTime(kind, assembly, name, ParseTime(row.Groups["time"].Value)));
            }
        }

        return (analyzerTotal, generatorTotal, rows);
    }

    private static double ParseTime(string text) =>
        text.StartsWith('<') ? 0.0 : double.Parse(text, CultureInfo.InvariantCulture);
}
