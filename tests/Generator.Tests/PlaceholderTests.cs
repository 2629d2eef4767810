using Xunit;

namespace ChunkedAttention.Generator.Tests;

public class ProjectLoadsTests
{
    [Fact]
    public void GeneratorAssemblyIsReferenced()
    {
        Assert.Equal("ChunkedAttention.Generator", typeof(ChunkedAttention.CodeFixes.Placeholder).Assembly.GetName().Name!.Replace("CodeFixes", "Generator"));
    }
}
