// The Llama forward (lib/model/llama.ts for training, lib/model/generate.ts for inference) on tiny
// random models against a float64 reference built from the op references: the training loss over a
// packed batch and the logits of every position, with dense f32 / bf16 and NF4 bases, LoRA on all or
// some projections (nonzero B, so the adapters matter). And the activation plan: a shorter batch reuses
// the longest one's memory, and planning never changes results.
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { packBatch } from "../lib/model/batch.ts";
import { sequenceLogits } from "../lib/model/generate.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import type { LoraOptions } from "../lib/model/lora_params.ts";
import { assertClose } from "./reference/compare.ts";
import { Rng } from "./reference/random.ts";
import {
  logitsOfRef,
  loraRef,
  lossRef,
  randomizeAdapters,
  randomSequences,
  randomWeights,
  tinyConfig,
  type TinySpec,
  uploadWeights,
  weightsOnDevice,
} from "./reference/tiny_llama.ts";

interface ForwardCase {
  name: string;
  spec: TinySpec;
  base: "f32" | "bf16" | "nf4";
  lora: Partial<LoraOptions> | null;
  lengths: number[];
}

const cases: ForwardCase[] = [
  {
    name: "GQA, tied, f32 base, LoRA everywhere",
    spec: { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 44, vocab: 37, tied: true },
    base: "f32",
    lora: { r: 4, alpha: 8 },
    lengths: [7, 1, 12],
  },
  {
    name: "MHA, untied, bf16 base, rsLoRA on q, v, down",
    spec: { hidden: 24, layers: 3, heads: 3, kvHeads: 3, intermediate: 50, vocab: 29, tied: false },
    base: "bf16",
    lora: { r: 3, alpha: 5, rslora: true, targets: ["q_proj", "v_proj", "down_proj"] },
    lengths: [5, 9],
  },
  {
    name: "GQA 4:1, NF4 base, no adapters",
    spec: { hidden: 64, layers: 2, heads: 8, kvHeads: 2, intermediate: 96, vocab: 41, tied: true },
    base: "nf4",
    lora: null,
    lengths: [3, 11, 6],
  },
];

const rng = new Rng();

const sequences = (lengths: number[], vocab: number) =>
  randomSequences(rng, lengths, vocab, (n) => Math.max(1, Math.floor(n / 2)));

Deno.test("model forward: loss and logits over packed sequences equal a float64 reference", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  for (const c of cases) {
    const what = `${c.name} (seed ${rng.seed})`;
    const config = tinyConfig(c.spec);
    using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
    using model = new LlamaModel(backend, config, weights, { lora: c.lora, loraSeed: rng.int(0, 1e9) });
    if (model.lora) randomizeAdapters(model.lora, rng);
    const host = weightsOnDevice(backend, weights);
    const lora = model.lora ? loraRef(model.lora) : undefined;

    const seqs = sequences(c.lengths, c.spec.vocab);
    const batch = packBatch(seqs);
    const { lossSum, count } = model.forward(batch, { training: false });
    assert.equal(count, batch.lossRows.length, what);
    assertClose([lossSum], [lossRef(config, host, batch, lora)], 1e-5, `${what}: loss`);

    const logits = sequenceLogits(model, seqs.map((s) => s.tokens));
    const want = logitsOfRef(config, host, batch.tokens, batch.cuSeqlens, lora);
    const V = c.spec.vocab;
    seqs.forEach((_, s) => {
      const from = batch.cuSeqlens[s] * V, to = batch.cuSeqlens[s + 1] * V;
      assertClose(logits[s], want.subarray(from, to), 1e-5, `${what}: logits of sequence ${s}`);
    });
  }
});

Deno.test("model forward: activations are planned once for the longest batch and reused", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 }); // tiny models: threads only add overhead
  const c = cases[0];
  const what = `seed ${rng.seed}`;
  const config = tinyConfig(c.spec);
  using weights = uploadWeights(backend, config, randomWeights(rng, config), c.base);
  using model = new LlamaModel(backend, config, weights, { lora: c.lora });
  randomizeAdapters(model.lora!, rng);
  const long = packBatch(sequences([13, 8, 21], c.spec.vocab));
  const short = packBatch(sequences([5, 2], c.spec.vocab));

  const first = model.forward(long);
  model.backward();
  const live = backend.liveAllocations();
  const shortLoss = model.forward(short);
  model.backward();
  const again = model.forward(long);
  model.backward();
  assert.equal(backend.liveAllocations(), live, `${what}: a shorter or equal batch allocated device memory`);
  assert.equal(again.lossSum, first.lossSum, `${what}: the long batch's loss changed after reuse`);

  using fresh = new LlamaModel(backend, config, weights, { lora: model.lora });
  assert.equal(
    fresh.forward(short).lossSum,
    shortLoss.lossSum,
    `${what}: a reused plan changed the short batch's loss`,
  );
});
