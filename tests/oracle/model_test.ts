// The whole model against transformers' LlamaForCausalLM and PEFT (model_oracle.py): logits of the
// real stories260K (fp32 and bf16 checkpoints, 16-bit dense base) and of the real SmolLM2-135M Q4_1
// GGUF (dequantized, dense f32 base); the NF4 model against transformers running on our dequantized
// weights (which must equal bitsandbytes' NF4 round trip); and LoRA training on three packed examples:
// the loss and every LoRA gradient against PEFT + torch autograd (from random nonzero B for one step;
// from PEFT's initialisation, where only B has a gradient at first, for five torch.optim.AdamW steps
// with gradient clipping, torch starting each step from our adapter), and each side's updates against
// the float64 AdamW of its own gradients. Our adapter reaches PEFT through the PEFT writer.
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
import { adamwStepRef } from "../reference/adamw.ts";
import { assertClose } from "../reference/compare.ts";
import { Rng } from "../reference/random.ts";
import { randomizeAdapters, weightsOnDevice } from "../reference/tiny_llama.ts";
import { bitsandbytesDefinesNf4, type OracleArray, type OracleOutputs, runOracle, tensor } from "./harness.ts";

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

/** One module's A and B (or their gradients) in a flat [n] LoRA array, with PEFT's shapes. */
function slices(lora: LoraParams, flat: Float32Array) {
  const r = lora.options.r;
  return lora.modules.map((m) => {
    const b = m.offset + r * m.inFeatures;
    return {
      name: m.name,
      A: tensor("f32", [r, m.inFeatures], flat.subarray(m.offset, b)),
      B: tensor("f32", [m.outFeatures, r], flat.subarray(b, b + r * m.outFeatures)),
    };
  });
}

/** The oracle's `<prefix><module>.lora_A` / `..lora_B` outputs laid out as our flat [n] LoRA array. */
function flatFromOracle(lora: LoraParams, out: OracleOutputs, prefix: string): Float32Array {
  const flat = new Float32Array(lora.n);
  for (const m of slices(lora, flat)) {
    m.A.data.set(out.get(`${prefix}${m.name}.lora_A`, "f32"));
    m.B.data.set(out.get(`${prefix}${m.name}.lora_B`, "f32"));
  }
  return flat;
}

interface AdamWOptions {
  steps: number;
  lr: number;
  weight_decay: number;
  max_grad_norm: number;
}

/** Our training steps on one batch: each step's loss and gradients, and the adapter before and after each update. */
function ourSteps(model: LlamaModel, batch: TrainBatch, steps: number, adamw: AdamWOptions | null) {
  const lora = model.lora!;
  const trajectory = { losses: [] as number[], grads: [] as Float32Array[], params: [lora.params()] };
  for (let step = 0; step < steps; step++) {
    lora.zeroGrads();
    const { lossSum, count } = model.forward(batch);
    model.backward();
    trajectory.losses.push(lossSum / count);
    trajectory.grads.push(lora.grads());
    if (!adamw) continue;
    lora.state.update({ lr: adamw.lr, weightDecay: adamw.weight_decay, maxGradNorm: adamw.max_grad_norm });
    trajectory.params.push(lora.params());
  }
  return trajectory;
}

/**
 * What torch.optim.AdamW after clip_grad_norm_ (the float64 reference) makes of each step's
 * `grads[step]` from `params[step]`, carrying its moments from step to step: `params[step + 1]`.
 */
function adamwReplay(params: Float32Array[], grads: Float32Array[], adamw: AdamWOptions): Float64Array[] {
  const n = grads[0].length;
  const s = { p: new Float64Array(n), g: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  const config = {
    lr: adamw.lr,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: adamw.weight_decay,
    maxGradNorm: adamw.max_grad_norm,
  };
  return grads.map((g, step) => {
    s.p.set(params[step]);
    s.g.set(g);
    adamwStepRef(s, config, step + 1);
    return s.p.slice();
  });
}

Deno.test("oracle model: LoRA steps on three packed examples equal PEFT's (loss, gradients, AdamW updates)", async () => {
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
  const weights = weightInputs(backend, model);

  // From PEFT's initialisation (B = 0, so only B has a gradient at first): five AdamW steps with
  // clipping. From random nonzero B: one step's gradients.
  const starts = [
    ["PEFT's initialisation (B = 0)", { steps: 5, lr: 1e-2, weight_decay: 0.01, max_grad_norm: 1.0 }],
    ["random nonzero B", null],
  ] as const;
  for (const [start, adamw] of starts) {
    const what = `from ${start} (seed ${rng.seed})`;
    if (!adamw) randomizeAdapters(lora, rng, 0.05);
    const initial = lora.params();
    const ours = ourSteps(model, batch, adamw?.steps ?? 1, adamw);
    lora.setParams(initial);

    // Each torch step starts from our adapter before that step. Adam divides every gradient by its
    // own running size, so a weight whose clipped gradient is near eps moves by a fraction of lr that
    // float rounding decides; from unequal adapters such weights would carry that into every later
    // step. The updates are instead checked against the float64 AdamW of each side's own gradients.
    const inputs: Record<string, OracleArray> = {
      ...packedInputs(batch),
      ...weights,
      loss_rows: tensor("i32", [batch.lossRows.length], batch.lossRows),
      targets: tensor("i32", [batch.targets.length], batch.targets),
    };
    for (let step = 1; step < ours.losses.length; step++) {
      for (const m of slices(lora, ours.params[step])) {
        inputs[`p${step}.${m.name}.lora_A`] = m.A;
        inputs[`p${step}.${m.name}.lora_B`] = m.B;
      }
    }
    const dir = await Deno.makeTempDir({ prefix: "lorac-adapter-" });
    try {
      await writePeftAdapter(dir, lora.toPeft());
      const out = await runOracle(
        "model_oracle.py",
        { case: "lora", folder: STORIES, adapter: dir, ...(adamw ? { adamw } : {}) },
        inputs,
      );
      assertClose(ours.losses, out.get("loss", "f32"), 1e-5, `${what}: the loss of every step`);
      const torchGrads = ours.grads.map((_, step) => flatFromOracle(lora, out, `g${step}.`));
      for (const [step, grads] of ours.grads.entries()) {
        const want = slices(lora, torchGrads[step]);
        for (const [i, m] of slices(lora, grads).entries()) {
          assertClose(m.A.data, want[i].A.data, 1e-4, `${what}: step ${step} dA of ${m.name}`);
          assertClose(m.B.data, want[i].B.data, 1e-4, `${what}: step ${step} dB of ${m.name}`);
        }
      }
      if (!adamw) continue;
      const torchParams = ours.grads.map((_, step) => flatFromOracle(lora, out, `p${step + 1}.`));
      const oursReplayed = adamwReplay(ours.params, ours.grads, adamw);
      const torchReplayed = adamwReplay(ours.params, torchGrads, adamw);
      for (let step = 0; step < adamw.steps; step++) {
        assertClose(ours.params[step + 1], oursReplayed[step], 1e-6, `${what}: our adapter after AdamW step ${step}`);
        assertClose(torchParams[step], torchReplayed[step], 1e-6, `${what}: torch's adapter after AdamW step ${step}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
