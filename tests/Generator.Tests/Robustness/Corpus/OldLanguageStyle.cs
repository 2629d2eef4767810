// C# 7.3-era code: block namespaces, no nullable annotations, no expression-bodied everything,
// explicit types, a generic method, a struct with explicit layout, an unsafe block.
using System;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Corpus.Legacy
{
    [StructLayout(LayoutKind.Sequential)]
    public struct AttnScratch
    {
        public int Rows;
        public int Cols;
    }

    public class LegacyMultiHeadAttention : torch.nn.Module
    {
        private int heads;

        public LegacyMultiHeadAttention(int heads) : base("legacy")
        {
            this.heads = heads;
        }

        public torch.Tensor Forward(torch.Tensor q, torch.Tensor k, torch.Tensor v)
        {
            torch.Tensor output;
            if (heads > 1)
            {
                output = torch.nn.functional.scaled_dot_product_attention(q, k, v);
            }
            else
            {
                output = torch.nn.functional.scaled_dot_product_attention(q, k, v, null, 0.0, false);
            }

            return output;
        }

        public T Echo<T>(T value) where T : class
        {
            return value;
        }

        public unsafe int Size(AttnScratch scratch)
        {
            AttnScratch* p = &scratch;
            return p->Rows * p->Cols;
        }
    }
}
