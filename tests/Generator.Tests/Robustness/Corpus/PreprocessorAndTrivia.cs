// Directives and trivia around calls and attributes: #if branches, #region, #pragma,
// XML docs, a verbatim identifier, calls split across lines with comments.
#define USE_CHUNKING
using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.Trivia
{
#region Attention
    /// <summary>Self attention with trivia everywhere.</summary>
#if USE_CHUNKING
    [ChunkedAttention.ChunkedAttention(ChunkSize = 32)]
    public partial class TriviaAttention
#else
    public class TriviaAttention
#endif
    {
#pragma warning disable CS0618
        /// <param name="q">queries</param>
        public Tensor @forward(Tensor q, Tensor k, Tensor v)
        {
            return nn.functional
                // the call itself
                .scaled_dot_product_attention( /* q */ q,
                    k, // keys
                    v
#if DEBUG
                    , is_casual: true
#endif
                );
        }
#pragma warning restore CS0618
    }
#endregion
}
