"""PyTorch + PEFT side of bench/train_bench.ts: LoRA training steps of a
LlamaForCausalLM loaded from a GGUF (transformers dequantizes it), on the
packed batches that train_bench.ts wrote, in one variant per process (so that
the peak RSS is the variant's own). The counterpart of bench/lorac_train.ts:
the same config in, the same JSON line out.

    python bench/torch_train.py '{"gguf": ..., "batches": ..., "variant": "fp32", "steps": 4, ...}'

Variants: fp32; bf16 (fp32 weights under torch.autocast("cpu", bfloat16));
nf4 (the linears as bitsandbytes NF4 Linear4bit, where its CPU path trains).
Each batch is one row of sequences packed end to end, as lorac packs them:
position_ids restart at every sequence and no attention mask is passed, so
transformers masks attention per sequence (masking_utils'
find_packed_sequence_indices); the labels are -100 outside the completions.
No padding: every token is real.

Prints one JSON line: per-step wall and CPU seconds, tokens and losses, maxrss, or
{"skipped": reason}.
"""

import json
import os
import sys
import time

from torch_gguf import maxrss_bytes


def fail_json(reason):
    print(json.dumps({"skipped": reason}))
    sys.exit(0)


def to_bnb4(model, torch):
    """Replaces every decoder nn.Linear by a bitsandbytes NF4 Linear4bit (CPU)."""
    import bitsandbytes as bnb

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if not isinstance(child, torch.nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=False,
                    compute_dtype=torch.float32,
                    quant_type="nf4",
                )
                q.weight = bnb.nn.Params4bit(child.weight.data.clone(), requires_grad=False, quant_type="nf4")
                # Params4bit quantizes on the move to a device.
                setattr(parent, name, q.to("cpu"))


def main():
    config = json.loads(sys.argv[1])
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(config["threads"])
    variant = config["variant"]
    gguf = config["gguf"]
    load_start = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), torch_dtype=torch.float32
    )
    if variant == "nf4":
        try:
            to_bnb4(model, torch)
        except Exception as e:  # any failure means bitsandbytes' CPU path cannot run here
            fail_json(f"bitsandbytes 4-bit on the CPU failed: {type(e).__name__}: {e}")
    model.config.use_cache = False
    lora = LoraConfig(
        r=config["r"],
        lora_alpha=config["alpha"],
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
    load_seconds = time.perf_counter() - load_start

    with open(config["batches"]) as f:
        batches = json.load(f)["batches"]
    steps = []
    for batch in batches[: config["steps"]]:
        ids, pos, labels = [], [], []
        for seq in batch:
            tokens, start = seq["tokens"], seq["completionStart"]
            ids += tokens
            pos += range(len(tokens))
            labels += [-100] * start + tokens[start:]
        input_ids = torch.tensor([ids])
        position_ids = torch.tensor([pos])
        label_ids = torch.tensor([labels])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            out = model(input_ids=input_ids, position_ids=position_ids, labels=label_ids, use_cache=False)
        out.loss.backward()
        optimizer.step()
        steps.append(
            {
                "seconds": time.perf_counter() - wall0,
                "cpu_seconds": time.process_time() - cpu0,
                "tokens": len(ids),
                "loss": out.loss.item(),
            }
        )
    maxrss = maxrss_bytes()  # VmHWM: ru_maxrss would carry the spawning Deno process's peak
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "load_seconds": load_seconds,
                "steps": steps,
                "maxrss_bytes": maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
