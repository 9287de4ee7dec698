// Inference with the KV cache (lib/model/inference.ts, generate.ts): greedy decoding of the real
// stories260K equals its reference continuation, alone and batched with other prompts; label
// scoring (prompt run once, candidates decoded over copies of its cache) equals the training forward's
// loss on prompt + candidate; a bf16 cache stays close to the f32 one.
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { packBatch } from "../lib/model/batch.ts";
import { generateGreedy, scoreContinuations } from "../lib/model/generate.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { assertClose } from "./reference/compare.ts";
import { Rng } from "./reference/random.ts";
import { randomizeAdapters, randomWeights, tinyConfig, uploadWeights } from "./reference/tiny_llama.ts";

const STORIES = decodeURIComponent(new URL("../../shared/models/stories260K/hf", import.meta.url).pathname);
const reference = JSON.parse(await Deno.readTextFile(`${STORIES}/reference_outputs.json`)) as {
  prompt_ids_with_bos: number[];
  greedy_continuation_ids: number[];
};
const rng = new Rng();

Deno.test("generate: stories260K greedy tokens equal reference_outputs.json, alone and in a batch", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using loaded = await loadModel(STORIES, backend, { tokenizer: false, progress: false, baseDtype: "f32" });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
  const want = reference.greedy_continuation_ids;
  const maxNewTokens = want.length;
  // stories260K has no EOS in this continuation: stop tokens only end the other prompts early, if at all.
  const [alone] = generateGreedy(model, [reference.prompt_ids_with_bos], { maxNewTokens });
  assert.deepEqual(alone, want);

  const others = [[1, 403, 407], [1, 261, 378, 432, 383, 286, 261, 376]];
  const batched = generateGreedy(model, [others[0], reference.prompt_ids_with_bos, others[1]], { maxNewTokens });
  assert.deepEqual(batched[1], want, "the reference prompt in a batch of three");
  others.forEach((p, i) => {
    assert.deepEqual(batched[i === 0 ? 0 : 2], generateGreedy(model, [p], { maxNewTokens })[0], `prompt ${i} alone`);
  });
});

Deno.test("generate: label scores equal the training forward's loss on prompt + candidate", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const config = tinyConfig({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 44, vocab: 37, tied: false });
  using weights = uploadWeights(backend, config, randomWeights(rng, config), "nf4");
  using model = new LlamaModel(backend, config, weights, { lora: { r: 4, alpha: 8, dropout: 0.3 } });
  randomizeAdapters(model.lora!, rng);
  const tokens = (n: number) => Array.from({ length: n }, () => rng.int(0, 36));
  const prompts = [tokens(6), tokens(1), tokens(11)];
  const candidates = [tokens(2), tokens(4), tokens(1), tokens(3)];
  const scores = scoreContinuations(model, prompts, candidates);
  const scoresBf16 = scoreContinuations(model, prompts, candidates, "bf16");
  prompts.forEach((p, i) => {
    const want = candidates.map((c) => {
      // Evaluation forward: no dropout, as in inference.
      const batch = packBatch([{ tokens: [...p, ...c], completionStart: p.length }]);
      return -model.forward(batch, { training: false }).lossSum;
    });
    assertClose(scores[i], want, 1e-5, `prompt ${i} (seed ${rng.seed})`);
    assertClose(scoresBf16[i], want, 1e-2, `prompt ${i}, bf16 cache (seed ${rng.seed})`);
  });
});
