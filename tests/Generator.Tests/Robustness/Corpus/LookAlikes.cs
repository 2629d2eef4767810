// Things that look like SDPA but are not: a method of the same name elsewhere, strings, comments,
// nameof and reflection. None of these is reported.
using System.Reflection;
using TorchSharp;

namespace Corpus.LookAlikes;

public static class Functional
{
    public static torch.Tensor scaled_dot_product_attention(torch.Tensor q, torch.Tensor k, torch.Tensor v) => q;
}

public class NotTheRealAttention
{
    // torch.nn.functional.scaled_dot_product_attention(q, k, v) in a comment
    private const string Name = "scaled_dot_product_attention";
    private static readonly string Other = nameof(torch.nn.functional.scaled_dot_product_attention);

    public torch.Tensor Run(torch.Tensor q) => Functional.scaled_dot_product_attention(q, q, q);

    public MethodInfo? Find() => typeof(torch.nn.functional).GetMethod(Name);

    public string Describe() => $"{Other}: {Name} // scaled_dot_product_attention(q, k, v)";
}
