// The hand-written backward of the whole model (lib/model/llama.ts + layer.ts): every LoRA gradient
// against finite differences of the forward's loss on tiny random models (fp32 compute, random nonzero
// B so dA is nontrivial; with dropout, whose mask the backward must recompute exactly; NF4 and dense
// bases; per-layer recomputation; adapters on the top layers only), and packed sequences that do not
// influence each other.
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { packBatch } from "../lib/model/batch.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import type { LoraOptions } from "../lib/model/lora_params.ts";
import { assertClose } from "./reference/compare.ts";
import { Rng } from "./reference/random.ts";
import {
  randomizeAdapters,
  randomSequences,
  randomWeights,
  tinyConfig,
  type TinySpec,
  uploadWeights,
} from "./reference/tiny_llama.ts";

interface BackwardCase {
  name: string;
  spec: TinySpec;
  base: "f32" | "nf4";
  lora: Partial<LoraOptions>;
  recompute: boolean;
  lengths: number[];
}

const cases: BackwardCase[] = [
  {
    name: "GQA, tied, f32 base, LoRA everywhere",
    spec: { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 44, vocab: 37, tied: true },
    base: "f32",
    lora: { r: 4, alpha: 8 },
    recompute: false,
    lengths: [7, 1, 12],
  },
  {
    name: "MHA, untied, f32 base, rsLoRA with dropout 0.2, recomputed layers",
    spec: { hidden: 24, layers: 2, heads: 3, kvHeads: 3, intermediate: 50, vocab: 29, tied: false },
    base: "f32",
    lora: { r: 3, alpha: 5, rslora: true, dropout: 0.2 },
    recompute: true,
    lengths: [9, 5],
  },
  {
    name: "GQA 4:1, NF4 base, LoRA on k, o, gate, up",
    spec: { hidden: 64, layers: 2, heads: 8, kvHeads: 2, intermediate: 96, vocab: 41, tied: true },
    base: "nf4",
    lora: { r: 2, alpha: 4, targets: ["k_proj", "o_proj", "gate_proj", "up_proj"] },
    recompute: false,
    lengths: [6, 10],
  },
  {
    name: "top layers only (layers_to_transform 2, 3 of 4), NF4 base, dropout 0.1: the backward stops at layer 2",
    spec: { hidden: 32, layers: 4, heads: 4, kvHeads: 2, intermediate: 40, vocab: 31, tied: false },
    base: "nf4",
    lora: { r: 2, alpha: 4, dropout: 0.1, layers: [3, 2] },
    recompute: false,
    lengths: [8, 5],
  },
];

const rng = new Rng();

const sequences = (lengths: number[], vocab: number) => randomSequences(rng, lengths, vocab, (n) => Math.max(1, n - 4));

Deno.test("model backward: every module's dA and dB equal finite differences of the loss", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  for (const c of cases) {
    const what = `${c.name} (seed ${rng.seed})`;
    const config = tinyConfig(c.spec);
    using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
    using model = new LlamaModel(backend, config, weights, { lora: c.lora, recompute: c.recompute });
    const lora = model.lora!;
    randomizeAdapters(lora, rng);
    const batch = packBatch(sequences(c.lengths, c.spec.vocab));
    const dropoutSeed = BigInt(rng.int(0, 1e9));
    lora.zeroGrads();
    model.forward(batch, { dropoutSeed });
    model.backward({ gradScale: 1 });
    const grads = lora.grads();
    const theta = lora.params();

    // The derivative of the summed loss along a random unit direction inside each A and each B,
    // by a Richardson-extrapolated central difference (fp32 forward: h not too small).
    const loss = (u: Float32Array, t: number) => {
      lora.setParams(theta.map((x, i) => x + t * u[i]));
      return model.forward(batch, { dropoutSeed }).lossSum;
    };
    const numeric: number[] = [], analytic: number[] = [];
    const r = lora.options.r;
    for (const m of lora.modules) {
      for (const [from, n] of [[m.offset, r * m.inFeatures], [m.offset + r * m.inFeatures, r * m.outFeatures]]) {
        const u = new Float32Array(lora.n);
        for (let i = from; i < from + n; i++) u[i] = rng.normal();
        const norm = Math.sqrt(u.reduce((s, x) => s + x * x, 0));
        u.forEach((x, i) => (u[i] = x / norm));
        const h = 2e-2;
        const d = (step: number) => (loss(u, step) - loss(u, -step)) / (2 * step);
        numeric.push((4 * d(h / 2) - d(h)) / 3);
        analytic.push(u.reduce((s, x, i) => s + x * grads[i], 0));
      }
    }
    lora.setParams(theta);
    assertClose(analytic, numeric, 2e-3, `${what}: directional derivatives of ${numeric.length} A/B blocks`);
  }
});

Deno.test("model backward: packed sequences neither see nor move each other (loss and gradients)", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  const c = cases[0];
  const what = `seed ${rng.seed}`;
  const config = tinyConfig(c.spec);
  using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
  using model = new LlamaModel(backend, config, weights, { lora: c.lora });
  const lora = model.lora!;
  randomizeAdapters(lora, rng);
  const seqs = sequences([11, 4, 8], c.spec.vocab);

  lora.zeroGrads();
  const packed = model.forward(packBatch(seqs));
  model.backward({ gradScale: 1 });
  const packedGrads = lora.grads();

  // Each sequence alone, its gradients accumulated: the same sums if nothing crosses a boundary.
  lora.zeroGrads();
  let lossSum = 0;
  for (const s of seqs) {
    lossSum += model.forward(packBatch([s])).lossSum;
    model.backward({ gradScale: 1 });
  }
  assertClose([packed.lossSum], [lossSum], 1e-5, `${what}: packed loss vs the sum of the sequences alone`);
  assertClose(packedGrads, lora.grads(), 1e-5, `${what}: packed gradients vs the sum of the sequences alone`);
});

Deno.test("model backward: per-layer recomputation gives the same gradients as keeping activations", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  const c = cases[0];
  const config = tinyConfig(c.spec);
  using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
  const batch = packBatch(sequences([9, 14], c.spec.vocab));
  const run = (recompute: boolean) => {
    using model = new LlamaModel(backend, config, weights, { lora: { ...c.lora, dropout: 0.1 }, recompute });
    randomizeAdapters(model.lora!, new Rng(rng.seed));
    const { lossSum } = model.forward(batch, { dropoutSeed: 5n });
    model.backward();
    return { lossSum, grads: model.lora!.grads() };
  };
  const kept = run(false), recomputed = run(true);
  assert.equal(recomputed.lossSum, kept.lossSum, `seed ${rng.seed}: loss`);
  assert.deepEqual(recomputed.grads, kept.grads, `seed ${rng.seed}: gradients differ`);
});

Deno.test("model backward: misuse is refused with a message saying what to do", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  const c = cases[1];
  const config = tinyConfig(c.spec);
  using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
  using model = new LlamaModel(backend, config, weights, { lora: c.lora });
  const batch = packBatch(sequences([5], c.spec.vocab));
  assert.throws(() => model.backward(), /no training forward/);
  assert.throws(() => model.forward(batch), /dropoutSeed/);
  model.forward(batch, { training: false });
  assert.throws(() => model.backward(), /no training forward/);
  assert.throws(() => model.forward({ ...batch, targets: batch.targets.map(() => 99) }), /vocabulary size 29/);
});
