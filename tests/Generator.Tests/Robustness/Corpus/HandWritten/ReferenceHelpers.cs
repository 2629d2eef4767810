// Helpers and look-alikes written for this corpus: a static reference implementation outside any
// attention processor (SDPA008 when enabled), slot attention normalising over the slots, gated and
// sharpened weights, a matrix library with its own matmul/softmax, and attention in places the wrapper
// cannot go (an interface's default method, a file-local type). "expect:" marks the outcome.
#nullable enable
using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Corpus.HandWritten.Helpers
{
    public static class TensorOps
    {
        /// <summary>Reference attention used by the tests: softmax(q kᵀ / sqrt(E) + mask) v.</summary>
        public static Tensor ReferenceSdpa(Tensor q, Tensor k, Tensor v, Tensor? mask = null)
        {
            var scores = q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(q.shape[^1]));
            if (mask is not null) scores = scores.add(mask);
            return scores.softmax(-1).matmul(v); // expect: SDPA008
        }

        public static Tensor Pool(Tensor query, Tensor tokens) =>
            torch.matmul(torch.softmax(torch.matmul(query, tokens.mT) * 0.125, -1), tokens); // expect: SDPA008

        public static Tensor Sharpened(Tensor q, Tensor k, Tensor v, double temperature) =>
            (torch.softmax(q.matmul(k.mT), -1) / temperature).matmul(v); // expect: declined StepAfterSoftmax

        public static Tensor Gated(Tensor q, Tensor k, Tensor v, Tensor gate) =>
            (q.matmul(k.mT) * gate).softmax(-1).matmul(v); // expect: declined ScaleNotANumber
    }

    public sealed class SlotAttention : nn.Module<Tensor, Tensor, Tensor>
    {
        public SlotAttention() : base(nameof(SlotAttention)) { }

        public override Tensor forward(Tensor slots, Tensor inputs)
        {
            var dots = torch.einsum("bid,bjd->bij", slots, inputs) * Math.Pow(slots.shape[^1], -0.5);
            var attn = dots.softmax(dim: 1) + 1e-8;
            attn = attn / attn.sum(-1, keepdim: true);
            var scores = slots.matmul(inputs.transpose(-1, -2));
            var slotWise = scores.softmax(dim: 1);
            return slotWise.matmul(inputs) + torch.einsum("bjd,bij->bid", inputs, attn); // expect: declined RankUnknown
        }
    }

    public sealed class Matrix
    {
        public Matrix matmul(Matrix other) => this;
        public Matrix transpose(long a, long b) => this;
        public Matrix softmax(long dim) => this;
        public static Matrix operator *(Matrix m, double s) => m;
    }

    public sealed class MatrixAttention
    {
        public Matrix Attend(Matrix q, Matrix k, Matrix v) => (q.matmul(k.transpose(-2, -1)) * 0.125).softmax(-1).matmul(v);
    }

    /// <summary>A default attention on an interface: no class or struct there to receive the wrapper.</summary>
    public interface IReferenceAttention
    {
        Tensor Attend(Tensor q, Tensor k, Tensor v) => q.matmul(k.mT).div(8).softmax(-1).matmul(v); // expect: declined HostNotClassOrStruct
    }

    /// <summary>A file-local attention: the generated file, another file, cannot extend it.</summary>
    file sealed class FileLocalAttention
    {
        public Tensor Attend(Tensor q, Tensor k, Tensor v) => q.matmul(k.mT).div(8).softmax(-1).matmul(v); // expect: declined HostFileLocal
    }
}
