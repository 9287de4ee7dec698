"""LoRA reference: PEFT's LoRA layer around a torch.nn.Linear or a bitsandbytes Linear4bit
(NF4, blocksize 64, optionally double-quantized), dropout 0.

params: {"cases": [{"name", "r", "alpha", "rslora", "base"}]}, base one of "dense", "nf4",
"nf4_double"; inputs: <name>.W [N,K], .A [r,K], .B [N,r], .X [M,K], .dY [M,N] (all f32).
outputs per case: y = model(X), and after y.backward(dY): dA, dB, dX; params: {"scaling":
{name: the scaling PEFT chose}}.
"""

import bitsandbytes as bnb
import torch
from peft import LoraConfig, get_peft_model

from oracle_io import read_inputs, write_outputs


class Tiny(torch.nn.Module):
    """One projection for PEFT to target."""

    def __init__(self, proj, in_4bit):
        super().__init__()
        self.proj = proj
        # What transformers sets on a 4-bit model: PEFT then wraps it with its bnb LoRA layer.
        self.is_loaded_in_4bit = in_4bit

    def forward(self, x):
        return self.proj(x)


def base_layer(kind, W):
    N, K = W.shape
    if kind == "dense":
        lin = torch.nn.Linear(K, N, bias=False)
        with torch.no_grad():
            lin.weight.copy_(W)
        return lin
    double = kind == "nf4_double"
    lin = bnb.nn.Linear4bit(K, N, bias=False, compute_dtype=torch.float32, compress_statistics=double, quant_type="nf4")
    lin.weight = bnb.nn.Params4bit(W.clone(), requires_grad=False, compress_statistics=double, quant_type="nf4", blocksize=64)
    # On a CPU with avx512bf16 an inference forward would repack the weight for a fused kernel that rounds the
    # input and absmax to bf16: not the float32 compute this reference stands for.
    lin.support_avx512bf16_for_cpu = False
    return lin.to("cpu")  # quantizes


params, inputs = read_inputs()
out = {}
scalings = {}
for case in params["cases"]:
    name = case["name"]
    t = {k: inputs[f"{name}.{k}"] for k in ("W", "A", "B", "X", "dY")}
    config = LoraConfig(
        r=case["r"], lora_alpha=case["alpha"], use_rslora=case["rslora"], lora_dropout=0.0, target_modules=["proj"]
    )
    model = get_peft_model(Tiny(base_layer(case["base"], t["W"]), case["base"] != "dense"), config)
    layer = model.base_model.model.proj
    expected = "Linear" if case["base"] == "dense" else "Linear4bit"
    assert type(layer).__name__ == expected, f"PEFT wrapped the base in {type(layer)}, expected a LoRA {expected}"
    A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    with torch.no_grad():
        A.copy_(t["A"])
        B.copy_(t["B"])
    x = t["X"].clone().requires_grad_(True)
    y = model(x)
    y.backward(t["dY"])
    out[name + ".y"] = y
    out[name + ".dA"] = A.grad
    out[name + ".dB"] = B.grad
    out[name + ".dX"] = x.grad
    scalings[name] = layer.scaling["default"]

write_outputs(out, {"scaling": scalings})
