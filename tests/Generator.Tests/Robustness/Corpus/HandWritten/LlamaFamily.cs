// Llama / Mistral / Phi / Qwen style attention, written for this corpus in the shapes those ports
// take: rotary embeddings, grouped-query heads repeated by a helper or by repeat_interleave, a
// nullable additive mask added under a null check, a softmax computed in fp32 and cast back, KV caches.
// Two-space indentation and unsorted usings on purpose. "expect:" marks the analysis outcome.
#nullable enable
using static TorchSharp.torch;
using TorchSharp.Modules;
using System;
using TorchSharp;

namespace Corpus.HandWritten.Llama
{
  public sealed record ModelArgs(int Dim = 512, int NHeads = 8, int NKvHeads = 2, int MaxBatch = 4, int MaxSeq = 256);

  internal static class Rotary
  {
    public static (Tensor Cos, Tensor Sin) Frequencies(int headDim, long length)
    {
      var inv = 1.0 / torch.pow(10000.0, torch.arange(0, headDim, 2, dtype: ScalarType.Float32) / headDim);
      var freqs = torch.outer(torch.arange(length, dtype: ScalarType.Float32), inv);
      var emb = torch.cat(new[] { freqs, freqs }, dim: -1);
      return (emb.cos(), emb.sin());
    }

    public static Tensor RotateHalf(Tensor x)
    {
      var halves = x.chunk(2, dim: -1);
      return torch.cat(new[] { -halves[1], halves[0] }, dim: -1);
    }

    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin) => x * cos + RotateHalf(x) * sin;
  }

  /// <summary>Meta's reference layout: the cache and repeat_kv go through helpers, so the key's rank is not proven.</summary>
  public sealed class Attention : nn.Module<Tensor, int, Tensor?, Tensor>
  {
    private readonly Linear wq, wk, wv, wo;
    private readonly int n_local_heads, n_local_kv_heads, n_rep, head_dim;
    private readonly Tensor cache_k, cache_v;

    public Attention(ModelArgs args) : base(nameof(Attention))
    {
      n_local_heads = args.NHeads;
      n_local_kv_heads = args.NKvHeads;
      n_rep = n_local_heads / n_local_kv_heads;
      head_dim = args.Dim / args.NHeads;
      wq = nn.Linear(args.Dim, args.NHeads * head_dim, hasBias: false);
      wk = nn.Linear(args.Dim, n_local_kv_heads * head_dim, hasBias: false);
      wv = nn.Linear(args.Dim, n_local_kv_heads * head_dim, hasBias: false);
      wo = nn.Linear(args.NHeads * head_dim, args.Dim, hasBias: false);
      cache_k = torch.zeros(args.MaxBatch, args.MaxSeq, n_local_kv_heads, head_dim);
      cache_v = torch.zeros(args.MaxBatch, args.MaxSeq, n_local_kv_heads, head_dim);
      RegisterComponents();
    }

    private static Tensor RepeatKV(Tensor x, int nRep)
    {
      long bs = x.shape[0], slen = x.shape[1], nKv = x.shape[2], hd = x.shape[3];
      if (nRep == 1) return x;
      return x.unsqueeze(3).expand(bs, slen, nKv, nRep, hd).reshape(bs, slen, nKv * nRep, hd);
    }

    public override Tensor forward(Tensor x, int start_pos, Tensor? mask)
    {
      long bsz = x.shape[0], seqlen = x.shape[1];
      var xq = wq.forward(x).view(bsz, seqlen, n_local_heads, head_dim);
      var xk = wk.forward(x).view(bsz, seqlen, n_local_kv_heads, head_dim);
      var xv = wv.forward(x).view(bsz, seqlen, n_local_kv_heads, head_dim);
      var (cos, sin) = Rotary.Frequencies(head_dim, seqlen);
      xq = Rotary.Apply(xq.transpose(1, 2), cos, sin).transpose(1, 2);
      xk = Rotary.Apply(xk.transpose(1, 2), cos, sin).transpose(1, 2);

      cache_k[..(int)bsz, start_pos..(int)(start_pos + seqlen)] = xk;
      cache_v[..(int)bsz, start_pos..(int)(start_pos + seqlen)] = xv;
      var keys = cache_k[..(int)bsz, ..(int)(start_pos + seqlen)];
      var values = cache_v[..(int)bsz, ..(int)(start_pos + seqlen)];

      // repeat k/v heads if n_kv_heads < n_heads
      keys = RepeatKV(keys, n_rep); // (bs, cache_len + seqlen, n_local_heads, head_dim)
      values = RepeatKV(values, n_rep);

      xq = xq.transpose(1, 2); // (bs, n_local_heads, seqlen, head_dim)
      keys = keys.transpose(1, 2);
      values = values.transpose(1, 2);
      var scores = torch.matmul(xq, keys.transpose(2, 3)) / Math.Sqrt(head_dim);
      if (mask is not null)
      {
        scores = scores + mask; // (bs, n_local_heads, seqlen, cache_len + seqlen)
      }
      scores = nn.functional.softmax(scores.@float(), dim: -1).type_as(xq);
      var output = torch.matmul(scores, values); // expect: declined RankUnknown
      output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1);
      return wo.forward(output);
    }
  }

  /// <summary>Mistral-style: heads repeated inline, transpose(-2, -1), a sliding-window mask built in place.</summary>
  public sealed class MistralAttention : nn.Module<Tensor, Tensor>
  {
    private readonly Linear q_proj, k_proj, v_proj, o_proj;
    private readonly int num_heads = 8, num_kv_heads = 2, head_dim = 64, window = 128;

    public MistralAttention() : base(nameof(MistralAttention))
    {
      q_proj = nn.Linear(512, num_heads * head_dim, hasBias: false);
      k_proj = nn.Linear(512, num_kv_heads * head_dim, hasBias: false);
      v_proj = nn.Linear(512, num_kv_heads * head_dim, hasBias: false);
      o_proj = nn.Linear(num_heads * head_dim, 512, hasBias: false);
      RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
      long bsz = hidden.shape[0], q_len = hidden.shape[1];
      var query_states = q_proj.forward(hidden).view(bsz, q_len, num_heads, head_dim).transpose(1, 2);
      var key_states = k_proj.forward(hidden).view(bsz, q_len, num_kv_heads, head_dim).transpose(1, 2);
      var value_states = v_proj.forward(hidden).view(bsz, q_len, num_kv_heads, head_dim).transpose(1, 2);
      key_states = key_states.repeat_interleave(num_heads / num_kv_heads, dim: 1);
      value_states = value_states.repeat_interleave(num_heads / num_kv_heads, dim: 1);

      var positions = torch.arange(q_len);
      var too_far = positions.unsqueeze(1) - positions.unsqueeze(0);
      var blocked = too_far.lt(0).logical_or(too_far.ge(window));

      var attn_weights = torch.matmul(query_states, key_states.transpose(-2, -1)) / Math.Sqrt(head_dim);
      attn_weights = attn_weights.masked_fill(blocked, float.NegativeInfinity);
      // upcast attention to fp32
      attn_weights = nn.functional.softmax(attn_weights, dim: -1, dtype: ScalarType.Float32).to(query_states.dtype);
      var attn_output = torch.matmul(attn_weights, value_states); // expect: SDPA007
      attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, num_heads * head_dim);
      return o_proj.forward(attn_output);
    }
  }

  /// <summary>Phi-style: 4-D heads from view, transpose(2, 3) proven by the view, the head dim a field.</summary>
  public sealed class PhiAttention : nn.Module<Tensor, Tensor?, Tensor>
  {
    private readonly Linear qkv;
    private readonly Dropout attention_dropout = nn.Dropout(0.0);
    private readonly int numHeads = 32, headDim = 80;

    public PhiAttention() : base(nameof(PhiAttention))
    {
      qkv = nn.Linear(2560, 3 * 2560);
      RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? attentionMask)
    {
      long bsz = hidden.shape[0], qLen = hidden.shape[1];
      var parts = qkv.forward(hidden).chunk(3, dim: -1);
      var queryStates = parts[0].view(bsz, qLen, numHeads, headDim).transpose(1, 2);
      var keyStates = parts[1].view(bsz, qLen, numHeads, headDim).transpose(1, 2);
      var valueStates = parts[2].view(bsz, qLen, numHeads, headDim).transpose(1, 2);

      var attnWeights = torch.matmul(queryStates.to(ScalarType.Float32), keyStates.to(ScalarType.Float32).transpose(2, 3)) / Math.Sqrt(headDim);
      if (attentionMask is not null) attnWeights += attentionMask;
      attnWeights = nn.functional.softmax(attnWeights, dim: -1, dtype: ScalarType.Float32).to(valueStates.dtype);
      attnWeights = attention_dropout.forward(attnWeights);
      var attnOutput = torch.matmul(attnWeights, valueStates); // expect: SDPA007
      return attnOutput.transpose(1, 2).reshape(bsz, qLen, numHeads * headDim);
    }
  }

  /// <summary>Qwen2-style: the same chain with functional dropout tied to the module's training flag.</summary>
  public sealed class Qwen2Attention : nn.Module<Tensor, Tensor?, Tensor>
  {
    private readonly Linear q_proj, k_proj, v_proj;
    private readonly int num_heads = 16, head_dim = 64;
    private readonly double attention_dropout = 0.0;

    public Qwen2Attention() : base(nameof(Qwen2Attention))
    {
      q_proj = nn.Linear(1024, 1024);
      k_proj = nn.Linear(1024, 1024);
      v_proj = nn.Linear(1024, 1024);
      RegisterComponents();
    }

    public override Tensor forward(Tensor hidden_states, Tensor? attention_mask)
    {
      long bsz = hidden_states.shape[0], q_len = hidden_states.shape[1];
      var query_states = q_proj.forward(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2);
      var key_states = k_proj.forward(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2);
      var value_states = v_proj.forward(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2);

      var attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / Math.Sqrt(head_dim);
      if (attention_mask is { })
      {
        attn_weights = attn_weights + attention_mask;
      }

      attn_weights = nn.functional.softmax(attn_weights, dim: -1, dtype: ScalarType.Float32).to(query_states.dtype);
      attn_weights = nn.functional.dropout(attn_weights, p: attention_dropout, training: training);
      var attn_output = torch.matmul(attn_weights, value_states); // expect: SDPA007
      return attn_output.transpose(1, 2).contiguous();
    }
  }
}
