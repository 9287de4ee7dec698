// The whole model against transformers' LlamaForCausalLM and PEFT (model_oracle.py): logits of the
// real stories260K (fp32 and bf16 checkpoints, 16-bit dense base) and of the real SmolLM2-135M Q4_1
// GGUF (dequantized, dense f32 base); the NF4 model against transformers running on our dequantized
// weights (which must equal bitsandbytes' NF4 round trip); and LoRA training on three packed examples:
// the loss and every LoRA gradient of one step against PEFT + torch autograd (from PEFT's
// initialisation, where only B has a gradient, and from random nonzero B), then the adapter after five
// torch.optim.AdamW steps with gradient clipping. Our adapter reaches PEFT through the PEFT writer.
import assert from "node:assert/strict";
import { type Backend, openBackend } from "../../lib/backend/backend.ts";
import { writePeftAdapter } from "../../lib/formats/peft_adapter.ts";
import { packBatch, type SequenceToPack, type TrainBatch } from "../../lib/model/batch.ts";
import { smollm2Gguf } from "../../lib/model/default_model.ts";
import { sequenceLogits } from "../../lib/model/generate.ts";
import { LlamaModel } from "../../lib/model/llama.ts";
import { loadModel } from "../../lib/model/load.ts";
import type { LoraParams } from "../../lib/model/lora_params.ts";
import { llamaTensorSlots } from "../../lib/model/weights.ts";
import { assertClose } from "../reference/compare.ts";
import { Rng } from "../reference/random.ts";
import { randomizeAdapters, weightsOnDevice } from "../reference/tiny_llama.ts";
import { bitsandbytesDefinesNf4, type OracleArray, runOracle, tensor } from "./harness.ts";

const STORIES = decodeURIComponent(new URL("../../../shared/models/stories260K/hf", import.meta.url).pathname);
const reference = JSON.parse(await Deno.readTextFile(`${STORIES}/reference_outputs.json`)) as {
  prompt_ids_with_bos: number[];
  greedy_continuation_ids: number[];
};
const quiet = { tokenizer: false, progress: false } as const;
const rng = new Rng();

function randomTokens(n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => rng.int(3, vocab - 1));
}

/** The packed tokens and offsets of sequences, as the oracle reads them. */
function packedInputs(batch: TrainBatch): Record<string, OracleArray> {
  return {
    tokens: tensor("i32", [batch.tokens.length], batch.tokens),
    cu_seqlens: tensor("i32", [batch.cuSeqlens.length], batch.cuSeqlens),
  };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) out.set(p, (offset += p.length) - p.length);
  return out;
}

Deno.test("oracle model: stories260K logits (fp32 and bf16 checkpoints) equal transformers'", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const seqs = [[...reference.prompt_ids_with_bos, ...reference.greedy_continuation_ids], randomTokens(13, 512)];
  const batch = packBatch(seqs.map((tokens) => ({ tokens, completionStart: 1 })));
  const files = [["model.safetensors", "f32"], ["model.bf16.safetensors", "bf16"]] as const;
  for (const [file, baseDtype] of files) {
    using loaded = await loadModel(`${STORIES}/${file}`, backend, { ...quiet, baseDtype });
    using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
    const ours = concat(sequenceLogits(model, seqs));
    const out = await runOracle(
      "model_oracle.py",
      { case: "checkpoint", folder: STORIES, weights: file },
      packedInputs(batch),
    );
    assertClose(ours, out.get("logits", "f32"), 1e-5, `${file} with a dense ${baseDtype} base (seed ${rng.seed})`);
  }
});

Deno.test("oracle model: SmolLM2-135M Q4_1 GGUF logits equal transformers' (gguf_file=, dequantized)", async () => {
  const path = await smollm2Gguf();
  using backend = await openBackend("cpu");
  using loaded = await loadModel(path, backend, { ...quiet, baseDtype: "f32" });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
  const seqs = [randomTokens(17, 49152), randomTokens(5, 49152), randomTokens(23, 49152)];
  const ours = concat(sequenceLogits(model, seqs));
  const folder = path.slice(0, path.lastIndexOf("/"));
  const gguf = path.slice(path.lastIndexOf("/") + 1);
  const batch = packBatch(seqs.map((tokens) => ({ tokens, completionStart: 1 })));
  const out = await runOracle("model_oracle.py", { case: "checkpoint", folder, gguf_file: gguf }, packedInputs(batch));
  assertClose(ours, out.get("logits", "f32"), 1e-4, `SmolLM2 logits over 30 layers (seed ${rng.seed})`);
});

/** Every tensor our model holds, as the oracle's "w.<name>" inputs (the lm_head only when untied). */
function weightInputs(backend: Backend, model: LlamaModel): Record<string, OracleArray> {
  const shapes = new Map(llamaTensorSlots(model.config).map((s) => [s.name, s.shape]));
  const inputs: Record<string, OracleArray> = {};
  for (const [name, values] of weightsOnDevice(backend, model.weights)) {
    if (name === "lm_head.weight" && model.weights.tied) continue;
    inputs[`w.${name}`] = tensor("f32", shapes.get(name)!, values);
  }
  return inputs;
}

Deno.test({
  name: "oracle model: the NF4 stories260K's logits equal transformers' on our dequantized weights",
  ignore: !(await bitsandbytesDefinesNf4()).ok,
}, async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using loaded = await loadModel(`${STORIES}/model.safetensors`, backend, quiet);
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
  const seqs = [reference.prompt_ids_with_bos, randomTokens(21, 512)];
  const batch = packBatch(seqs.map((tokens) => ({ tokens, completionStart: 1 })));
  const out = await runOracle(
    "model_oracle.py",
    { case: "weights", folder: STORIES, weights: "model.safetensors", bnb_check: true },
    { ...packedInputs(batch), ...weightInputs(backend, model) },
  );
  assert.equal(out.params.bnb_mismatch, 0, "our NF4 linears, dequantized, differ from bitsandbytes' round trip");
  assertClose(concat(sequenceLogits(model, seqs)), out.get("logits", "f32"), 1e-5, `NF4 logits (seed ${rng.seed})`);
});

/** One module's A, B or gradient slice of a flat [n] LoRA array. */
function slices(lora: LoraParams, flat: Float32Array) {
  const r = lora.options.r;
  return lora.modules.map((m) => ({
    name: m.name,
    A: flat.subarray(m.offset, m.offset + r * m.inFeatures),
    B: flat.subarray(m.offset + r * m.inFeatures, m.offset + r * (m.inFeatures + m.outFeatures)),
  }));
}

Deno.test("oracle model: a LoRA step on three packed examples equals PEFT's (loss, gradients, 5 AdamW steps)", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using loaded = await loadModel(`${STORIES}/model.safetensors`, backend, quiet);
  using model = new LlamaModel(backend, loaded.config, loaded.weights, {
    lora: { r: 4, alpha: 8 },
    loraSeed: rng.int(0, 1e9),
  });
  const lora = model.lora!;
  const examples: SequenceToPack[] = [9, 14, 6].map((n, i) => ({
    tokens: randomTokens(n, 512),
    completionStart: n - 2 - i,
  }));
  const batch = packBatch(examples);
  const adamw = { steps: 5, lr: 1e-2, weight_decay: 0.01, max_grad_norm: 1.0 };
  const inputs = {
    ...packedInputs(batch),
    ...weightInputs(backend, model),
    loss_rows: tensor("i32", [batch.lossRows.length], batch.lossRows),
    targets: tensor("i32", [batch.targets.length], batch.targets),
  };

  for (const start of ["PEFT's initialisation (B = 0)", "random nonzero B"] as const) {
    const what = `from ${start} (seed ${rng.seed})`;
    if (start === "random nonzero B") randomizeAdapters(lora, rng, 0.05);
    const initial = lora.params();
    const dir = await Deno.makeTempDir({ prefix: "lorac-adapter-" });
    try {
      await writePeftAdapter(dir, lora.toPeft());
      const withSteps = start === "random nonzero B" ? {} : { adamw };
      const out = await runOracle(
        "model_oracle.py",
        { case: "lora", folder: STORIES, adapter: dir, ...withSteps },
        inputs,
      );

      lora.zeroGrads();
      const { lossSum, count } = model.forward(batch);
      model.backward();
      assertClose([lossSum / count], out.get("loss", "f32"), 1e-5, `${what}: loss`);
      for (const m of slices(lora, lora.grads())) {
        assertClose(m.A, out.get(`g.${m.name}.lora_A`, "f32"), 1e-4, `${what}: dA of ${m.name}`);
        assertClose(m.B, out.get(`g.${m.name}.lora_B`, "f32"), 1e-4, `${what}: dB of ${m.name}`);
      }
      if (!withSteps.adamw) continue;
      for (let step = 0; step < adamw.steps; step++) {
        lora.zeroGrads();
        model.forward(batch);
        model.backward();
        lora.state.update({ lr: adamw.lr, weightDecay: adamw.weight_decay, maxGradNorm: adamw.max_grad_norm });
      }
      // Adam's first steps move each weight by about lr times the sign of its gradient, so a weight whose
      // gradient nearly cancels can follow float rounding: bound the difference by a tenth of one step.
      for (const m of slices(lora, lora.params())) {
        for (const [k, got] of [["A", m.A], ["B", m.B]] as const) {
          const want = out.get(`p.${m.name}.lora_${k}`, "f32");
          const worst = got.reduce((w, x, i) => Math.max(w, Math.abs(x - want[i])), 0);
          assert.ok(worst <= adamw.lr / 10, `${what}: ${k} of ${m.name} after 5 AdamW steps is ${worst} off torch's`);
        }
      }
      lora.setParams(initial);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
