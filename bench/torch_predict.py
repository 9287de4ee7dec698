"""PyTorch + PEFT side of bench/predict_bench.ts: batched greedy generation
with a LlamaForCausalLM loaded from the GGUF (transformers dequantizes it)
and the LoRA adapter folder lorac wrote (PeftModel.from_pretrained), on the
prompt ids lorac built, in one variant per process (so that the peak RSS is
the variant's own). The counterpart of bench/lorac_predict.ts: the same JSON
line out.

    python bench/torch_predict.py '{"gguf": ..., "adapter": ..., "prompts": ..., "variant": "fp32", ...}'

config["prompts"] is a JSON file {"prompts": [[ids], ...], "labels": [...],
"max_new_tokens": n} (lorac_predict.ts writes it). Prompts are batched
config["batch_size"] at a time, longest first (so each batch pads little),
left-padded with an attention mask, and generated greedily (do_sample=False)
for at most max_new_tokens, stopped by the model's EOS. An answer is the
generated text up to EOS, special tokens skipped, stripped; it is a
prediction when it equals a label, as lorac's generate decoding has it.

Variants: fp32; bf16 (the model and adapter cast to bfloat16). With
config["probe_limit_ms"], the longest config["probe"] prompts run first as
one batch (not measured): when they take longer than that many ms per
example, the side prints {"skipped": reason} instead of running them all.

Only the generate calls are timed (not loading, padding or decoding to text).
Prints one JSON line: seconds, maxrss_bytes, answers and preds in prompt
order, or {"skipped": reason}.
"""

import json
import sys
import time

from torch_gguf import load_gguf_llama, load_gguf_tokenizer, maxrss_bytes, skip


def main():
    config = json.loads(sys.argv[1])
    import torch
    from peft import PeftModel

    torch.set_num_threads(config["threads"])
    model = load_gguf_llama(config["gguf"], torch)
    if config["variant"] == "bf16":
        model = model.to(torch.bfloat16)
    model = PeftModel.from_pretrained(model, config["adapter"])
    model.eval()
    tokenizer = load_gguf_tokenizer(config["gguf"])
    with open(config["prompts"]) as f:
        job = json.load(f)
    prompts, labels, max_new_tokens = job["prompts"], job["labels"], job["max_new_tokens"]
    eos = model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, list) else [eos])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)

    def generate(indices):
        """Greedy continuations of the prompts at `indices` (one left-padded batch) and their wall seconds."""
        width = max(len(prompts[i]) for i in indices)
        ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in indices])
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in indices])
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=sorted(stop),
            )
        return out[:, width:].tolist(), time.perf_counter() - start

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    limit = config.get("probe_limit_ms")
    if limit is not None:
        probe = order[: config["probe"]]
        _, seconds = generate(probe)
        ms = 1000 * seconds / len(probe)
        if ms > limit:
            skip(
                f"{config['variant']} took {ms:.0f} ms/example on the {len(probe)} longest prompts, "
                f"over the {limit:.0f} ms/example this run allows"
            )

    answers = [None] * len(prompts)
    seconds = 0.0
    batch_size = config["batch_size"]
    for b in range(0, len(order), batch_size):
        batch = order[b : b + batch_size]
        generated, took = generate(batch)
        seconds += took
        for i, ids in zip(batch, generated):
            end = next((k + 1 for k, t in enumerate(ids) if t in stop), len(ids))
            answers[i] = tokenizer.decode(ids[:end], skip_special_tokens=True).strip()
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "seconds": seconds,
                "maxrss_bytes": maxrss_bytes(),
                "answers": answers,
                "preds": [a if a in labels else None for a in answers],
            }
        )
    )


if __name__ == "__main__":
    main()
