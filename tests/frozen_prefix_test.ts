// LoRA on the top layers with the frozen layers' output cached (lib/train/frozen_prefix.ts): a forward
// started from the cached hidden states gives the same loss, gradients and argmax as the whole forward;
// training from the cache ends with the same bytes as training without it; the greedy accuracy
// evaluate() reads off one teacher-forced forward is the accuracy of real greedy generation.
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { packBatch } from "../lib/model/batch.ts";
import { generateGreedy } from "../lib/model/generate.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { evaluate } from "../lib/train/evaluate.ts";
import { FrozenPrefix } from "../lib/train/frozen_prefix.ts";
import { trainStep } from "../lib/train/step.ts";
import { Rng } from "./reference/random.ts";
import {
  randomizeAdapters,
  randomSequences,
  randomWeights,
  tinyConfig,
  uploadWeights,
} from "./reference/tiny_llama.ts";

const STORIES = new URL("../../shared/models/stories260K/hf", import.meta.url).pathname;
const rng = new Rng();

const sequences = (lengths: number[], vocab: number) => randomSequences(rng, lengths, vocab, (n) => Math.max(1, n - 3));

Deno.test("frozen prefix: starting at the lowest adapted layer gives the whole forward's loss, gradients, argmax", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const config = tinyConfig({ hidden: 32, layers: 4, heads: 4, kvHeads: 2, intermediate: 40, vocab: 31, tied: true });
  using weights = uploadWeights(backend, config, randomWeights(rng, config), "nf4");
  using model = new LlamaModel(backend, config, weights, { lora: { r: 2, alpha: 4, dropout: 0.1, layers: [2, 3] } });
  randomizeAdapters(model.lora!, rng);
  const examples = sequences([7, 3, 11], config.vocabSize);
  const run = (hidden?: { layer: number; values: Float32Array }) => {
    model.lora!.zeroGrads();
    const r = model.forward(packBatch(examples), { dropoutSeed: 9n, argmax: true, hidden });
    model.backward();
    return { ...r, grads: model.lora!.grads() };
  };
  const whole = run();
  const prefix = FrozenPrefix.compute(model, examples, 16); // several batches, another order than the forward's
  assert.equal(prefix.layer, 2);
  const cached = run(prefix.of([0, 1, 2]));
  assert.equal(cached.lossSum, whole.lossSum, `seed ${rng.seed}: loss`);
  assert.deepEqual(cached.predicted, whole.predicted, `seed ${rng.seed}: argmax`);
  assert.deepEqual(cached.grads, whole.grads, `seed ${rng.seed}: gradients`);
  assert.equal(prefix.bytes, 21 * 32 * 4);
  // Hidden states above the lowest adapted layer would skip an adapter's gradient.
  assert.throws(
    () =>
      model.forward(packBatch(examples), { dropoutSeed: 1n, hidden: { layer: 3, values: new Float32Array(21 * 32) } }),
    /skip adapted layers \(the lowest is 2\)/,
  );
  assert.throws(
    () => model.forward(packBatch(examples), { dropoutSeed: 1n, hidden: { layer: 2, values: new Float32Array(5) } }),
    /5 hidden values for 21 tokens of 32/,
  );
});

Deno.test("frozen prefix: training from the cache ends with the same adapter bytes as without it", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const config = tinyConfig({ hidden: 32, layers: 3, heads: 4, kvHeads: 4, intermediate: 40, vocab: 29, tied: false });
  using weights = uploadWeights(backend, config, randomWeights(rng, config), "nf4");
  const examples = sequences([6, 9, 4, 12, 5, 8], config.vocabSize);
  const steps = [{ epoch: 0, batches: [[3, 1], [0]] }, { epoch: 0, batches: [[5, 2, 4]] }, {
    epoch: 1,
    batches: [[0, 5]],
  }];
  const train = (cache: boolean) => {
    using model = new LlamaModel(backend, config, weights, { lora: { r: 4, alpha: 8, dropout: 0.1, layers: [2] } });
    const prefix = cache ? FrozenPrefix.compute(model, examples, 20) : undefined;
    steps.forEach((step, s) =>
      trainStep(model, examples, step, { adamw: { lr: 1e-2 }, seed: 3, firstMicroBatch: 2 * s, prefix })
    );
    return model.lora!.params();
  };
  assert.deepEqual(train(true), train(false), `seed ${rng.seed}`);
});

Deno.test("evaluate: the greedy accuracy read off the teacher-forced forward is that of real greedy generation", async () => {
  using backend = await openBackend("cpu");
  using loaded = await loadModel(STORIES, backend, { tokenizer: false, progress: false });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: { r: 2, alpha: 4, layers: [3, 4] } });
  const prompts = [[1, 403, 407, 261], [1, 365, 263, 278], [1, 403, 407, 261, 378, 307], [1, 311, 4]];
  const greedy = generateGreedy(model, prompts, { maxNewTokens: 3 });
  // Examples 0 and 2 ask for the greedy continuation; 1 and 3 for another third token.
  const examples = prompts.map((p, i) => {
    const completion = i % 2 === 0 ? greedy[i] : [greedy[i][0], greedy[i][1], (greedy[i][2] + 1) % 512];
    return { tokens: [...p, ...completion], completionStart: p.length, answer: `${i}`, truncated: false };
  });
  const decoding = { kind: "generate", stopTokens: [2] } as const;
  assert.equal(evaluate(model, examples, 64, decoding).accuracy, 0.5);
  const prefix = FrozenPrefix.compute(model, examples, 64);
  const cached = evaluate(model, examples, 64, decoding, prefix);
  assert.deepEqual(cached, evaluate(model, examples, 64, decoding));
});
