"""Whole-model reference: transformers' LlamaForCausalLM (eager attention, float32) and PEFT.

params["case"] picks what to compute; every sequence runs alone (batch of one), so the reference
never packs. Inputs: "tokens" (i32, the sequences end to end) and "cu_seqlens" (i32 offsets).

- "checkpoint": the model from a checkpoint as transformers loads it: params "folder" and either
  "weights" (a .safetensors file inside it; its tensors are loaded into LlamaForCausalLM(config)) or
  "gguf_file" (from_pretrained(folder, gguf_file=...), dequantized to float32).
  Output: "logits" [T, V] (f32).
- "weights": LlamaForCausalLM(config of params "folder") holding the tensors "w.<HF name>" we send
  (what our device holds, e.g. dequantized NF4). Output: "logits". With params "bnb_check": the
  checkpoint "weights" file's linears quantized by bitsandbytes (NF4, blocksize 64) and dequantized;
  params "bnb_mismatch" counts the elements that differ from the "w.*" we sent.
- "lora": the "weights" model wrapped by PEFT from params "adapter" (a folder we wrote, loaded
  trainable). The loss is the summed cross-entropy of the rows "loss_rows" (i32, indices into the
  packed tokens, predicting "targets") over their count, as lorac computes it. Outputs "loss" and
  "g0.<module>.lora_A" / "g0.<module>.lora_B" (gradients). When params "adamw" is set ({"steps",
  "lr", "weight_decay", "max_grad_norm"}), that many torch.optim.AdamW steps (clipping with
  clip_grad_norm_ first) follow on the same batch, each from our parameters: step s > 0 starts from
  the inputs "p<s>.<module>.lora_A" / "..lora_B" (lorac's adapter after its own step s - 1) while the
  optimiser keeps its own moments, so each step is compared from equal parameters and float rounding
  cannot compound along two trajectories. "loss" then holds every step's loss, "g<s>.*" every step's
  gradients and "p<s+1>.*" the adapter after step s.
"""

import os

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from oracle_io import read_inputs, write_outputs

torch.manual_seed(0)


def sequences(inputs):
    tokens, cu = inputs["tokens"].long(), inputs["cu_seqlens"].tolist()
    return [(cu[s], tokens[cu[s] : cu[s + 1]]) for s in range(len(cu) - 1)]


def model_with(folder, state):
    config = LlamaConfig.from_pretrained(folder)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).float().eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (config.tie_word_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model


def checkpoint_model(params):
    folder = params["folder"]
    if "gguf_file" in params:
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=params["gguf_file"], dtype=torch.float32, attn_implementation="eager"
        )
        return model.eval()
    state = {k: v.float() for k, v in load_file(os.path.join(folder, params["weights"])).items()}
    return model_with(folder, state)


def sent_weights(inputs):
    return {name[2:]: t.float() for name, t in inputs.items() if name.startswith("w.")}


def logits_of(model, inputs):
    with torch.no_grad():
        return torch.cat([model(ids[None]).logits[0] for _, ids in sequences(inputs)]).float()


def bnb_mismatch(params, inputs):
    import bitsandbytes.functional as F

    state = load_file(os.path.join(params["folder"], params["weights"]))
    bad = 0
    for name, t in inputs.items():
        if name.startswith("w.") and name.endswith("_proj.weight"):
            w = state[name[2:]].float()
            q, s = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
            bad += int((F.dequantize_4bit(q, s, quant_type="nf4").float() != t).sum())
    return bad


def lora_loss(model, inputs):
    rows, targets = inputs["loss_rows"].long(), inputs["targets"].long()
    total = torch.zeros(())
    for start, ids in sequences(inputs):
        logits = model(input_ids=ids[None]).logits[0]
        mine = (rows >= start) & (rows < start + len(ids))
        total = total + torch.nn.functional.cross_entropy(
            logits[rows[mine] - start], targets[mine], reduction="sum"
        )
    return total / len(rows)


def lora_case(params, inputs):
    from peft import PeftModel

    base = model_with(params["folder"], sent_weights(inputs))
    model = PeftModel.from_pretrained(base, params["adapter"], is_trainable=True)
    model.train()  # dropout is 0: train mode changes nothing but PEFT's bookkeeping
    lora = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not lora or not all(".lora_A." in n or ".lora_B." in n for n in lora):
        raise SystemExit(f"PEFT made these trainable: {list(lora)}")

    def key(name):
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight -> model.layers.0.self_attn.q_proj.lora_A
        return name.removeprefix("base_model.model.").removesuffix(".default.weight")

    opt = params.get("adamw")
    adamw = torch.optim.AdamW(lora.values(), lr=opt["lr"], weight_decay=opt["weight_decay"], foreach=False) if opt else None
    losses, out = [], {}
    for step in range(opt["steps"] if opt else 1):
        if step > 0:
            with torch.no_grad():
                for n, p in lora.items():
                    p.copy_(inputs[f"p{step}." + key(n)])
        for p in lora.values():
            p.grad = None
        loss = lora_loss(model, inputs)
        loss.backward()
        losses.append(loss.detach())
        out.update({f"g{step}." + key(n): p.grad.clone() for n, p in lora.items()})
        if adamw:
            torch.nn.utils.clip_grad_norm_(lora.values(), opt["max_grad_norm"])
            adamw.step()
            out.update({f"p{step + 1}." + key(n): p.detach().clone() for n, p in lora.items()})
    out["loss"] = torch.stack(losses)
    return out


params, inputs = read_inputs()
case = params["case"]
if case == "checkpoint":
    write_outputs({"logits": logits_of(checkpoint_model(params), inputs)})
elif case == "weights":
    extra = {"bnb_mismatch": bnb_mismatch(params, inputs)} if params.get("bnb_check") else {}
    write_outputs({"logits": logits_of(model_with(params["folder"], sent_weights(inputs)), inputs)}, extra)
elif case == "lora":
    write_outputs(lora_case(params, inputs))
else:
    raise SystemExit(f"unknown case {case!r}: use checkpoint, weights or lora")
