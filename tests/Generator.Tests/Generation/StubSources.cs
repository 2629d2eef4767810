namespace ChunkedAttention.Generator.Tests.Generation;

/// <summary>
/// Source stand-ins for TorchSharp and the runtime, to see how the generator follows a TorchSharp
/// whose <c>scaled_dot_product_attention</c> differs from 0.107's. Compiled with the framework only.
/// </summary>
internal static class StubSources
{
    /// <summary>A TorchSharp with the given SDPA parameter list after query, key and value (null: no SDPA at all).</summary>
    public static string TorchSharp(string? sdpa) => """
        #pragma warning disable CS8981 // TorchSharp's lower-case names, as in the real assembly
        namespace TorchSharp
        {
            public static partial class torch
            {
                public sealed class Tensor { }

                public static partial class nn
                {
                    public static partial class functional
                    {

        """ + (sdpa is null ? string.Empty : """
                        public static Tensor scaled_dot_product_attention(Tensor query, Tensor key, Tensor value
        """ + sdpa + ") => query;\n") + """
                    }
                }
            }
        }
        #pragma warning restore CS8981

        """;

    /// <summary>The runtime surface the generated code calls.</summary>
    public const string Runtime = """
        namespace ChunkedAttention
        {
            using Tensor = global::TorchSharp.torch.Tensor;

            [System.Flags]
            public enum AttentionDevices { None = 0, Cpu = 1, Cuda = 2, Mps = 4, All = Cpu | Cuda | Mps }

            [System.AttributeUsage(System.AttributeTargets.Class | System.AttributeTargets.Struct, Inherited = false)]
            public sealed class ChunkedAttentionAttribute : System.Attribute
            {
                public int ChunkSize { get; set; } = 1024;
            }

            public sealed class ChunkedAttentionOptions
            {
                public int ChunkSize { get; init; } = 1024;
                public int KeyChunkSize { get; init; }
                public AttentionDevices Devices { get; init; } = AttentionDevices.Mps;
                public long MaxScoreElements { get; init; }
                public bool TryNativeFirst { get; init; }
                public bool SkipDeviceCheck { get; init; }
            }

            public static class ChunkedSdpa
            {
                public static Tensor Attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
                    double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
                    ChunkedAttentionOptions? options = null) => query;

                public static Tensor Chunked(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
                    double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false,
                    ChunkedAttentionOptions? options = null) => query;

                public static bool ShouldChunk(Tensor query, Tensor key, ChunkedAttentionOptions? options = null) => false;

                public static bool IsChunkingDevice(Tensor query, ChunkedAttentionOptions? options = null) => false;

                public static bool IsNativeCall(Tensor? attn_mask, bool is_causal, double? scale, bool enable_gqa) => true;

                public static Tensor Native(Tensor query, Tensor key, Tensor value, Tensor? attn_mask = null,
                    double p = 0.0, bool is_causal = false, double? scale = null, bool enable_gqa = false) => query;
            }
        }

        """;
}
