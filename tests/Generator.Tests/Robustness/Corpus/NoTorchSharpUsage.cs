// Ordinary application code with nothing to do with attention: must cost nothing and report nothing.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Corpus.Plain
{
    public record Order(int Id, string Customer, decimal Total);

    public static class Reports
    {
        public static string Summarize(IEnumerable<Order> orders)
        {
            var builder = new StringBuilder();
            foreach (var group in orders.GroupBy(o => o.Customer).OrderByDescending(g => g.Sum(o => o.Total)))
            {
                builder.Append(group.Key).Append(": ").Append(group.Sum(o => o.Total).ToString("F2")).AppendLine();
            }

            return builder.ToString();
        }

        public static int Attention(string text) => text.Count(char.IsUpper);
    }

    public class AttentionSpan
    {
        public TimeSpan Duration { get; init; }
        public override string ToString() => $"{Duration.TotalSeconds} s";
    }
}
