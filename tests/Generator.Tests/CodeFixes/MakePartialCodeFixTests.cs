using System.Threading.Tasks;
using Xunit;
using Test = ChunkedAttention.Generator.Tests.CodeFixes.CodeFixTest<ChunkedAttention.CodeFixes.MakePartialCodeFixProvider>;

namespace ChunkedAttention.Generator.Tests.CodeFixes;

public class MakePartialCodeFixTests
{
    [Fact]
    public async Task Marked_type_becomes_partial()
    {
        await Test.VerifyAsync("""
            using ChunkedAttention;

            [ChunkedAttention]
            public sealed class {|SDPA002:SelfAttention|}
            {
            }
            """, """
            using ChunkedAttention;

            [ChunkedAttention]
            public sealed partial class SelfAttention
            {
            }
            """);
    }

    [Fact]
    public async Task Type_and_every_container_become_partial()
    {
        await Test.VerifyAsync("""
            using ChunkedAttention;

            namespace Models;

            public static class {|SDPA002:Outer|}
            {
                internal readonly struct {|SDPA002:Middle|}
                {
                    [ChunkedAttention(256)]
                    private record {|SDPA002:SelfAttention|}(int Heads);

                    [ChunkedAttention]
                    private partial class Other { }
                }
            }
            """, """
            using ChunkedAttention;

            namespace Models;

            public static partial class Outer
            {
                internal readonly partial struct Middle
                {
                    [ChunkedAttention(256)]
                    private partial record SelfAttention(int Heads);

                    [ChunkedAttention]
                    private partial class Other { }
                }
            }
            """);
    }

    [Fact]
    public async Task Generic_type_without_modifiers_keeps_its_trivia()
    {
        await Test.VerifyAsync("""
            using ChunkedAttention;

            /// <summary>Doc.</summary>
            [ChunkedAttention]
            class {|SDPA002:SelfAttention|}<T> // note
                where T : struct
            {
            }
            """, """
            using ChunkedAttention;

            /// <summary>Doc.</summary>
            [ChunkedAttention]
            partial class SelfAttention<T> // note
                where T : struct
            {
            }
            """);
    }

    [Fact]
    public async Task Fix_all_across_files_makes_every_reported_type_partial_once()
    {
        await new Test()
            .WithFile("/0/A.cs", """
            using ChunkedAttention;

            class {|SDPA002:Outer|}
            {
                [ChunkedAttention] class {|SDPA002:A|} { }
                [ChunkedAttention] class {|SDPA002:B|} { }
            }
            """, """
            using ChunkedAttention;

            partial class Outer
            {
                [ChunkedAttention] partial class A { }
                [ChunkedAttention] partial class B { }
            }
            """)
            .WithFile("/0/B.cs", """
            using ChunkedAttention;

            [ChunkedAttention(KeyChunkSize = 64)]
            struct {|SDPA002:C|} { }
            """, """
            using ChunkedAttention;

            [ChunkedAttention(KeyChunkSize = 64)]
            partial struct C { }
            """)
            .RunAsync();
    }
}
