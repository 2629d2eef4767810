// Top-level statements calling SDPA directly: reported, but no fix can add a wrapper here.
using System;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

var q = torch.randn(1, 2, 8, 4);
var k = torch.randn(1, 2, 8, 4);
var v = torch.randn(1, 2, 8, 4);
var o = scaled_dot_product_attention(q, k, v);
System.Console.WriteLine(o.shape.Length);

Func<torch.Tensor, torch.Tensor> attend = x => scaled_dot_product_attention(x, x, x, is_casual: true);
System.Console.WriteLine(attend(q).shape[0]);

static torch.Tensor Local(torch.Tensor a) => scaled_dot_product_attention(a, a, a);
System.Console.WriteLine(Local(q).shape[0]);
