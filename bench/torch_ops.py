"""Times torch's CPU attention and lm_head + cross-entropy for
bench/attention_bench.ts, one call per request, so the two sides can take
turns on a shared machine.

Protocol: one JSON request per stdin line, one JSON reply per stdout line.
  {"op": "setup", "threads": n}                      -> {"torch": version}
  {"op": "attention", "lengths": [...], "nHeads": h, "nKvHeads": g,
   "headDim": d, "mode": "gqa" | "repeat"}           -> {"fwd": s, "bwd": s}
  {"op": "cross_entropy", "rows": r, "D": d, "V": v} -> {"fwd": s, "bwd": s}

attention: F.scaled_dot_product_attention(is_causal=True) on each sequence of
the packed batch separately, its kv heads shared with enable_gqa=True
("gqa") or repeated with repeat_interleave ("repeat"); then autograd's
backward from a fixed dout. cross_entropy: F.linear on the selected rows'
hidden states with a frozen fp32 W, F.cross_entropy(reduction="sum") on the
full logits, backward to the hidden states. Inputs are made once per shape.
"""

import json
import sys
import time

import torch
import torch.nn.functional as F

cache = {}


def attention_inputs(req):
    key = ("attention", tuple(req["lengths"]), req["nHeads"], req["nKvHeads"], req["headDim"])
    if key not in cache:
        g = torch.Generator().manual_seed(0)
        h, kv, d = req["nHeads"], req["nKvHeads"], req["headDim"]
        seqs = []
        for n in req["lengths"]:
            q = torch.randn(1, h, n, d, generator=g).requires_grad_()
            k = torch.randn(1, kv, n, d, generator=g).requires_grad_()
            v = torch.randn(1, kv, n, d, generator=g).requires_grad_()
            seqs.append((q, k, v, torch.randn(1, h, n, d, generator=g)))
        cache[key] = seqs
    return cache[key]


def attention(req):
    seqs = attention_inputs(req)
    group = req["nHeads"] // req["nKvHeads"]
    for q, k, v, _ in seqs:
        q.grad = k.grad = v.grad = None
    t0 = time.perf_counter()
    outs = []
    for q, k, v, _ in seqs:
        if req["mode"] == "gqa":
            outs.append(F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
        else:
            kr, vr = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            outs.append(F.scaled_dot_product_attention(q, kr, vr, is_causal=True))
    t1 = time.perf_counter()
    torch.autograd.backward(outs, [dout for *_, dout in seqs])
    t2 = time.perf_counter()
    return {"fwd": t1 - t0, "bwd": t2 - t1}


def cross_entropy(req):
    key = ("cross_entropy", req["rows"], req["D"], req["V"])
    if key not in cache:
        g = torch.Generator().manual_seed(0)
        h = torch.randn(req["rows"], req["D"], generator=g).requires_grad_()
        w = torch.randn(req["V"], req["D"], generator=g) * 0.02
        targets = torch.randint(0, req["V"], (req["rows"],), generator=g)
        cache[key] = (h, w, targets)
    h, w, targets = cache[key]
    h.grad = None
    t0 = time.perf_counter()
    loss = F.cross_entropy(F.linear(h, w), targets, reduction="sum")
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return {"fwd": t1 - t0, "bwd": t2 - t1}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "setup":
            torch.set_num_threads(req["threads"])
            reply = {"torch": torch.__version__}
        elif req["op"] == "attention":
            reply = attention(req)
        elif req["op"] == "cross_entropy":
            reply = cross_entropy(req)
        else:
            reply = {"error": f"unknown op {req['op']}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
