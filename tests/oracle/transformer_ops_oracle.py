"""Transformer ops reference: transformers' Llama modules and torch's cross-entropy.

params: {"rmsnorm": [{"name", "dim", "eps"}],
         "rope": [{"name", "config", "lengths", "nHeads", "nKvHeads"}],
         "attention": [{"name", "lengths", "nHeads", "nKvHeads", "headDim"}],
         "cross_entropy": [{"name", "D"}]}
inputs and outputs, per case (layouts of cuda/lorac.h: tokens first, heads inside a row):
  rmsnorm:       x, w, dy (f32 [rows, dim]) -> y = LlamaRMSNorm(x), dx (autograd of <y, dy>)
  rope:          q [T, H, d], k [T, KV, d], dq (f32 [T, H, d]) -> inv_freq of LlamaRotaryEmbedding(LlamaConfig(config)),
                 q_embed, k_embed from apply_rotary_pos_emb at positions restarting per sequence, and
                 dq_in (autograd of <q_embed, dq>)
  attention:     q, k, v, dout -> out, dq, dk, dv: eager_attention_forward on each sequence separately with a
                 causal mask, then autograd
  cross_entropy: h [T, D], w [V, D] (f32 or bf16), rows, targets (i32) -> loss (F.cross_entropy(h[rows] @ w^T,
                 targets, reduction="sum")), dh (its gradient for h, f32 [T, D])
"""

import types

import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
    eager_attention_forward,
)

from oracle_io import read_inputs, write_outputs

params, inputs = read_inputs()
out = {}


def positions(lengths):
    return torch.cat([torch.arange(n) for n in lengths])


for case in params["rmsnorm"]:
    name = case["name"]
    norm = LlamaRMSNorm(case["dim"], eps=case["eps"])
    with torch.no_grad():
        norm.weight.copy_(inputs[name + ".w"])
    x = inputs[name + ".x"].clone().requires_grad_()
    y = norm(x)
    (y * inputs[name + ".dy"]).sum().backward()
    out[name + ".y"], out[name + ".dx"] = y, x.grad

for case in params["rope"]:
    name = case["name"]
    rotary = LlamaRotaryEmbedding(LlamaConfig(**case["config"]))
    q = inputs[name + ".q"].clone().requires_grad_()
    k = inputs[name + ".k"]
    pos = positions(case["lengths"])[None]
    cos, sin = rotary(q, pos)
    # [T, heads, d] is the [batch, seq, heads, d] layout with batch 1: unsqueeze the heads axis (2).
    q_embed, k_embed = apply_rotary_pos_emb(q[None], k[None], cos, sin, unsqueeze_dim=2)
    (q_embed * inputs[name + ".dq"][None]).sum().backward()
    out[name + ".inv_freq"] = rotary.inv_freq
    out[name + ".q_embed"], out[name + ".k_embed"], out[name + ".dq_in"] = q_embed[0], k_embed[0], q.grad

for case in params["attention"]:
    name = case["name"]
    module = types.SimpleNamespace(num_key_value_groups=case["nHeads"] // case["nKvHeads"], training=False)
    leaves = {key: inputs[f"{name}.{key}"].clone().requires_grad_() for key in ("q", "k", "v")}
    outs, start = [], 0
    for n in case["lengths"]:
        # Each sequence alone, [1, heads, n, d], with a causal mask: nothing crosses a boundary.
        q, k, v = (leaves[key][start : start + n].transpose(0, 1)[None] for key in ("q", "k", "v"))
        mask = torch.full((n, n), torch.finfo(torch.float32).min).triu(1)[None, None]
        o, _ = eager_attention_forward(module, q, k, v, mask, scaling=case["headDim"] ** -0.5)
        outs.append(o[0])
        start += n
    o = torch.cat(outs)
    (o * inputs[name + ".dout"]).sum().backward()
    out[name + ".out"] = o
    for key in ("q", "k", "v"):
        out[f"{name}.d{key}"] = leaves[key].grad

for case in params["cross_entropy"]:
    name = case["name"]
    h = inputs[name + ".h"].clone().requires_grad_()
    w = inputs[name + ".w"].float()
    rows, targets = inputs[name + ".rows"].long(), inputs[name + ".targets"].long()
    loss = torch.nn.functional.cross_entropy(h[rows] @ w.T, targets, reduction="sum")
    loss.backward()
    out[name + ".loss"], out[name + ".dh"] = loss.reshape(1), h.grad

write_outputs(out)
