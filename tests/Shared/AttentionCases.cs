using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace ChunkedAttention.Testing;

/// <summary>
/// The equality suite: every case the runtime must compute as native SDPA does (or, where native's kernel is
/// wrong, as the exact result). One table for the CPU tests (tests/Runtime.Tests) and the device check
/// (tools/DeviceCheck), so a case added here runs in both.
/// </summary>
public static class AttentionCases
{
    // Declared before All: static fields initialise in declaration order.
    private static readonly int[] KeyChunks = { 0, 4 };

    /// <summary>Every case, in a fixed order with unique names.</summary>
    public static IReadOnlyList<AttentionCase> All { get; } = Build().ToArray();

    /// <summary>Looks a case up by name.</summary>
    public static AttentionCase Named(string name) => All.Single(c => c.Name == name);

    private static string Blocks(long keyChunk) => keyChunk == 0 ? "rows" : "blocks" + keyChunk.ToString(CultureInfo.InvariantCulture);

    private static IEnumerable<AttentionCase> Build()
    {
        // Every mask rank and broadcast the validator accepts, bool and additive.
        var maskShapes = new[]
        {
            "LxS", "1xS", "Lx1", "HxLxS", "1xLxS", "Hx1xS", "BxHxLxS", "Bx1xLxS", "1xHx1xS", "Bx1x1xS", "Bx1xLx1", "1x1x1x1",
        };
        foreach (var shape in maskShapes)
        {
            foreach (var isBool in new[] { true, false })
            {
                foreach (var keyChunk in KeyChunks)
                {
                    yield return new AttentionCase($"mask {shape} {(isBool ? "bool" : "float")} {Blocks(keyChunk)}")
                    {
                        Mask = isBool ? MaskKind.Bool : MaskKind.Float,
                        MaskShape = shape,
                        KeyChunkSize = keyChunk,
                    };
                }
            }
        }

        // Causal (top-left) with L < S, L > S and chunks that do and do not divide L.
        var causal = new (long L, long S, long Chunk, long KeyChunk)[]
        {
            (8, 8, 3, 0), (8, 8, 4, 0), (5, 9, 2, 0), (9, 5, 2, 0), (9, 5, 4, 0), (6, 13, 4, 0), (13, 6, 5, 0),
            (8, 8, 1, 0), (8, 8, 8, 0), (8, 8, 100, 0),
            (8, 8, 3, 3), (5, 9, 2, 4), (9, 5, 4, 2), (6, 13, 4, 5), (13, 6, 5, 1), (8, 8, 1, 3), (8, 8, 100, 3),
        };
        foreach (var (l, s, chunk, keyChunk) in causal)
        {
            yield return new AttentionCase($"causal L{l} S{s} chunk{chunk} {Blocks(keyChunk)}")
            {
                L = l, S = s, Causal = true, ChunkSize = chunk, KeyChunkSize = keyChunk,
            };
        }

        // Causal and a mask both apply.
        var causalMasks = new (string Shape, bool IsBool, long KeyChunk)[]
        {
            ("LxS", true, 0), ("LxS", false, 0), ("Bx1xLxS", true, 0), ("Bx1xLxS", false, 0), ("1xS", true, 0), ("1xS", false, 0),
            ("Hx1xS", false, 0), ("LxS", true, 4), ("Bx1xLxS", false, 4), ("1xS", false, 2), ("Hx1xS", true, 4),
        };
        foreach (var (shape, isBool, keyChunk) in causalMasks)
        {
            yield return new AttentionCase($"causal and mask {shape} {(isBool ? "bool" : "float")} {Blocks(keyChunk)}")
            {
                Causal = true, Mask = isBool ? MaskKind.Bool : MaskKind.Float, MaskShape = shape, KeyChunkSize = keyChunk,
            };
        }

        foreach (var keyChunk in KeyChunks)
        {
            yield return new AttentionCase($"causal and mask L11 S5 chunk4 {Blocks(keyChunk)}")
            {
                L = 11, S = 5, Causal = true, Mask = MaskKind.Float, MaskShape = "Bx1xLxS", ChunkSize = 4, KeyChunkSize = keyChunk,
            };

            yield return new AttentionCase($"scale 0.3 {Blocks(keyChunk)}") { Scale = 0.3, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"scale 1.7 causal and mask {Blocks(keyChunk)}")
            {
                Scale = 1.7, Causal = true, Mask = MaskKind.Float, KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"one key/value head, no gqa {Blocks(keyChunk)}") { QueryHeads = 4, KeyValueHeads = 1, KeyChunkSize = keyChunk };
        }

        // Grouped-query attention, alone and with causal + mask + scale.
        var gqa = new (long Hq, long Hkv, bool Everything, long KeyChunk)[]
        {
            (6, 2, false, 0), (6, 3, false, 0), (6, 1, false, 0), (6, 6, false, 0), (6, 2, true, 0), (6, 2, false, 4), (6, 1, true, 4), (6, 3, true, 2),
        };
        foreach (var (hq, hkv, everything, keyChunk) in gqa)
        {
            yield return new AttentionCase($"gqa {hq}/{hkv}{(everything ? " causal mask scale" : string.Empty)} {Blocks(keyChunk)}")
            {
                QueryHeads = hq, KeyValueHeads = hkv, Gqa = true, KeyChunkSize = keyChunk,
                Causal = everything, Mask = everything ? MaskKind.Bool : MaskKind.None, MaskShape = "BxHxLxS", Scale = everything ? 0.5 : null,
            };
        }

        // Fully masked rows give zeros on every path (also where native's kernel does not), fully masked key blocks nothing.
        foreach (var keyChunk in KeyChunks)
        {
            foreach (var isBool in new[] { true, false })
            {
                var kind = isBool ? "bool" : "float";
                yield return new AttentionCase($"fully masked rows {kind} {Blocks(keyChunk)}")
                {
                    Mask = isBool ? MaskKind.BoolRowsHidden : MaskKind.FloatRowsHidden, KeyChunkSize = keyChunk,
                };
                yield return new AttentionCase($"fully masked rows Bx1xLxS {kind} causal {Blocks(keyChunk)}")
                {
                    Mask = isBool ? MaskKind.BoolRowsHidden : MaskKind.FloatRowsHidden, MaskShape = "Bx1xLxS", Causal = true, KeyChunkSize = keyChunk,
                };
                yield return new AttentionCase($"fully masked rows Bx1xLx1 {kind} {Blocks(keyChunk)}")
                {
                    Mask = isBool ? MaskKind.BoolRowsHidden : MaskKind.FloatRowsHidden, MaskShape = "Bx1xLx1", KeyChunkSize = keyChunk,
                };
            }
        }

        foreach (var isBool in new[] { true, false })
        {
            yield return new AttentionCase($"fully masked key block {(isBool ? "bool" : "float")} blocks4")
            {
                Mask = isBool ? MaskKind.BoolKeysHidden : MaskKind.FloatKeysHidden, KeyChunkSize = 4,
            };
        }

        // A Float32 additive mask whatever the query's dtype (on half queries: the dtypes differ).
        foreach (var keyChunk in KeyChunks)
        {
            yield return new AttentionCase($"float32 mask LxS {Blocks(keyChunk)}") { Mask = MaskKind.Float, MaskFloat32 = true, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"float32 mask Bx1xLxS causal {Blocks(keyChunk)}")
            {
                Mask = MaskKind.Float, MaskShape = "Bx1xLxS", MaskFloat32 = true, Causal = true, KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"float32 mask Bx1xLx1 {Blocks(keyChunk)}") { Mask = MaskKind.Float, MaskShape = "Bx1xLx1", MaskFloat32 = true, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"float32 mask with hidden rows {Blocks(keyChunk)}")
            {
                Mask = MaskKind.FloatRowsHidden, MaskShape = "Bx1xLxS", MaskFloat32 = true, KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"key-dim-1 float mask Bx1xLx1 causal {Blocks(keyChunk)}")
            {
                Mask = MaskKind.Float, MaskShape = "Bx1xLx1", Causal = true, KeyChunkSize = keyChunk,
            };
        }

        // Auto chunk size (ChunkSize 0): the fewest equal chunks under a cap, also with causal, a mask and key blocks.
        yield return new AttentionCase("auto under a cap of 3 rows") { ChunkSize = 0, MaxScoreRowsTimesKeys = 3 * 9 };
        yield return new AttentionCase("auto under a cap causal and mask") { ChunkSize = 0, MaxScoreRowsTimesKeys = 4 * 9, Causal = true, Mask = MaskKind.Bool, MaskShape = "Bx1xLxS" };
        yield return new AttentionCase("auto under a cap below one row") { ChunkSize = 0, MaxScoreRowsTimesKeys = 2 * 4, Mask = MaskKind.Float };
        yield return new AttentionCase("auto without a cap") { ChunkSize = 0, Causal = true, Mask = MaskKind.FloatRowsHidden };

        // Layouts: no batch, no leading dims, two batch dims, broadcast leading dims, transposed views.
        foreach (var keyChunk in KeyChunks)
        {
            yield return new AttentionCase($"3-D {Blocks(keyChunk)}") { Layout = InputLayout.ThreeD, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"3-D causal and mask {Blocks(keyChunk)}")
            {
                Layout = InputLayout.ThreeD, Causal = true, Mask = MaskKind.Bool, KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"2-D causal {Blocks(keyChunk)}") { Layout = InputLayout.TwoD, Causal = true, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"5-D mask {Blocks(keyChunk)}")
            {
                Layout = InputLayout.FiveD, Mask = MaskKind.Float, MaskShape = "2x1x1xLxS", KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"5-D causal and mask {Blocks(keyChunk)}")
            {
                Layout = InputLayout.FiveD, Causal = true, Mask = MaskKind.Float, MaskShape = "2x1x1xLxS", KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"broadcast batch dims {Blocks(keyChunk)}") { Layout = InputLayout.BroadcastBatch, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"transposed views {Blocks(keyChunk)}") { Layout = InputLayout.Transposed, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"transposed views causal and mask {Blocks(keyChunk)}")
            {
                Layout = InputLayout.Transposed, Causal = true, Mask = MaskKind.Bool, MaskShape = "Bx1xLxS", KeyChunkSize = keyChunk,
            };
        }

        // Gradients through every path.
        foreach (var keyChunk in KeyChunks)
        {
            yield return new AttentionCase($"gradients {Blocks(keyChunk)}") { QueryHeads = 6, Gradients = true, KeyChunkSize = keyChunk };
            yield return new AttentionCase($"gradients gqa causal mask scale {Blocks(keyChunk)}")
            {
                QueryHeads = 6, KeyValueHeads = 2, Gqa = true, Causal = true, Mask = MaskKind.Float, MaskShape = "Bx1xLxS", Scale = 0.7,
                Gradients = true, KeyChunkSize = keyChunk,
            };
            yield return new AttentionCase($"gradients transposed views {Blocks(keyChunk)}")
            {
                QueryHeads = 6, Layout = InputLayout.Transposed, Gradients = true, KeyChunkSize = keyChunk,
            };
        }
    }
}
