"""PEFT adapter reference: PEFT 0.21 loads the adapter lorac wrote, and writes adapters for lorac to read,
both on the real stories260K Llama.

params: {"model": HF folder, "ours": adapter folder lorac wrote, "ours_top": one of some layers only, "seed",
         "theirs": [{"dir", "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora",
                     "rank_pattern", "alpha_pattern", "layers_to_transform", "dtype": "float32" | "bfloat16"}]}
outputs: ours.<module>.A / .B (f32): the LoRA weights PeftModel.from_pretrained(base, ours) holds;
         ours_top.<module>.A / .B: the same for ours_top;
         theirs<i>.<module>.A / .B (f32): the random nonzero weights of the adapter PEFT saved in theirs[i].dir.
params:  ours_scaling / theirs_scaling[i] {module: PEFT's scaling}, ours_config (what PEFT parsed),
         theirs_json[i] (the adapter_config.json PEFT wrote).
"""

import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForCausalLM

from oracle_io import read_inputs, write_outputs

params, _ = read_inputs()


def lora_layers(model):
    """(module name in the HF model, LoraLayer) for every adapted layer; names drop PEFT's wrapper prefix."""
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name.removeprefix("base_model.model."), module


def base():
    return AutoModelForCausalLM.from_pretrained(params["model"], dtype=torch.float32)


out, result = {}, {}

# Ours, loaded by PEFT.
model = PeftModel.from_pretrained(base(), params["ours"])
for name, layer in lora_layers(model):
    out[f"ours.{name}.A"] = layer.lora_A["default"].weight.float()
    out[f"ours.{name}.B"] = layer.lora_B["default"].weight.float()
result["ours_scaling"] = {name: layer.scaling["default"] for name, layer in lora_layers(model)}
cfg = model.peft_config["default"]
result["ours_config"] = {
    "r": cfg.r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout, "use_rslora": cfg.use_rslora,
    "target_modules": sorted(cfg.target_modules), "task_type": getattr(cfg.task_type, "value", cfg.task_type),
    "peft_type": getattr(cfg.peft_type, "value", cfg.peft_type),
    "base_model_name_or_path": cfg.base_model_name_or_path,
}

# Ours with layers_to_transform: PEFT adapts those layers only.
model = PeftModel.from_pretrained(base(), params["ours_top"])
for name, layer in lora_layers(model):
    out[f"ours_top.{name}.A"] = layer.lora_A["default"].weight.float()
    out[f"ours_top.{name}.B"] = layer.lora_B["default"].weight.float()
result["ours_top_layers"] = model.peft_config["default"].layers_to_transform

# Theirs: PEFT adapters with random nonzero weights, saved for us to read.
result["theirs_scaling"], result["theirs_json"] = [], []
torch.manual_seed(params["seed"])
for i, case in enumerate(params["theirs"]):
    config = LoraConfig(
        r=case["r"], lora_alpha=case["lora_alpha"], lora_dropout=case["lora_dropout"],
        target_modules=case["target_modules"], use_rslora=case["use_rslora"],
        rank_pattern=case["rank_pattern"], alpha_pattern=case["alpha_pattern"], task_type="CAUSAL_LM",
        layers_to_transform=case["layers_to_transform"],
    )
    model = get_peft_model(base(), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.1)
    if case["dtype"] == "bfloat16":
        model = model.to(torch.bfloat16)
    model.save_pretrained(case["dir"])
    for name, layer in lora_layers(model):
        out[f"theirs{i}.{name}.A"] = layer.lora_A["default"].weight.float()
        out[f"theirs{i}.{name}.B"] = layer.lora_B["default"].weight.float()
    result["theirs_scaling"].append({name: layer.scaling["default"] for name, layer in lora_layers(model)})
    with open(os.path.join(case["dir"], "adapter_config.json")) as f:
        result["theirs_json"].append(json.load(f))

write_outputs(out, result)
