// BERT / RoBERTa self-attention as a TorchSharp port would write it, for this corpus: a helper that
// splits heads with view + permute, a Dropout module on the probabilities, an extended attention
// mask added under a null check, and the RoBERTa variant that hands the probabilities back when
// asked to. Tabs and CRLF line endings on purpose. "expect:" marks the analysis outcome.
#nullable enable
using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Corpus.HandWritten.Bert
{
	public sealed class BertSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
	{
		private readonly int num_attention_heads;
		private readonly int attention_head_size;
		private readonly int all_head_size;
		private readonly Linear query;
		private readonly Linear key;
		private readonly Linear value;
		private readonly Dropout dropout;

		public BertSelfAttention(int hiddenSize = 768, int heads = 12, double attentionProbsDropout = 0.1)
			: base(nameof(BertSelfAttention))
		{
			num_attention_heads = heads;
			attention_head_size = hiddenSize / heads;
			all_head_size = num_attention_heads * attention_head_size;
			query = nn.Linear(hiddenSize, all_head_size);
			key = nn.Linear(hiddenSize, all_head_size);
			value = nn.Linear(hiddenSize, all_head_size);
			dropout = nn.Dropout(attentionProbsDropout);
			RegisterComponents();
		}

		private Tensor TransposeForScores(Tensor x)
		{
			var newShape = new long[] { x.shape[0], x.shape[1], num_attention_heads, attention_head_size };
			return x.view(newShape).permute(0, 2, 1, 3);
		}

		public override Tensor forward(Tensor hidden_states, Tensor? attention_mask)
		{
			var query_layer = TransposeForScores(query.forward(hidden_states));
			var key_layer = TransposeForScores(key.forward(hidden_states));
			var value_layer = TransposeForScores(value.forward(hidden_states));

			// Take the dot product between "query" and "key" to get the raw attention scores.
			var attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2));
			attention_scores = attention_scores / Math.Sqrt(attention_head_size);
			if (attention_mask is not null)
			{
				// Apply the attention mask (precomputed for all layers in BertModel forward() function)
				attention_scores = attention_scores + attention_mask;
			}

			// Normalize the attention scores to probabilities.
			var attention_probs = nn.functional.softmax(attention_scores, dim: -1);

			// This is actually dropping out entire tokens to attend to, which might
			// seem a bit unusual, but is taken from the original Transformer paper.
			attention_probs = dropout.forward(attention_probs);

			var context_layer = torch.matmul(attention_probs, value_layer); // expect: SDPA007
			context_layer = context_layer.permute(0, 2, 1, 3).contiguous();
			return context_layer.view(context_layer.shape[0], context_layer.shape[1], all_head_size);
		}
	}

	public sealed class RobertaSelfAttention : nn.Module<Tensor, Tensor?, bool, (Tensor, Tensor?)>
	{
		private readonly Linear query = nn.Linear(768, 768);
		private readonly Linear key = nn.Linear(768, 768);
		private readonly Linear value = nn.Linear(768, 768);
		private readonly Dropout dropout = nn.Dropout(0.1);

		public RobertaSelfAttention() : base(nameof(RobertaSelfAttention)) => RegisterComponents();

		private static Tensor Heads(Tensor x) => x.view(x.shape[0], x.shape[1], 12, 64).permute(0, 2, 1, 3);

		public override (Tensor, Tensor?) forward(Tensor hidden_states, Tensor? attention_mask, bool output_attentions)
		{
			var q = Heads(query.forward(hidden_states));
			var k = Heads(key.forward(hidden_states));
			var v = Heads(value.forward(hidden_states));
			var scores = torch.matmul(q, k.transpose(-1, -2)) / 8.0;
			if (attention_mask is not null) scores = scores + attention_mask;
			var probs = dropout.forward(nn.functional.softmax(scores, dim: -1));
			var context = torch.matmul(probs, v); // expect: declined IntermediateUsedElsewhere
			return output_attentions ? (context, probs) : (context, null);
		}
	}
}
