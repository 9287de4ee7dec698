// The NaN/Inf guard: a non-finite gradient norm makes AdamW change nothing; a non-finite loss (a poisoned LoRA
// weight) makes trainStep skip the update; train() stops at such a step with one line naming it and the last
// good checkpoint and saves nothing of it, or, with skipNonfiniteSteps, skips it and counts it. The NaN comes in
// through the public API only: gradients and weights written into the optimizer state, or a learning rate so
// large that the weights after one step overflow the next forward pass.
import assert from "node:assert/strict";
import { AdamWState } from "../lib/backend/adamw.ts";
import { openBackend } from "../lib/backend/backend.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { loadCheckpoint } from "../lib/train/checkpoint.ts";
import { trainStep } from "../lib/train/step.ts";
import { train, type TrainOptions } from "../lib/train/trainer.ts";
import { Rng } from "./reference/random.ts";
import { STORIES_260K, storiesTokenizer } from "./reference/stories_tokenizer.ts";

const rng = new Rng();
const seed = `(seed ${rng.seed})`;

Deno.test("nan guard: AdamW changes nothing when the gradient norm is not finite, then steps on", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const n = 1001;
  const cases: [string, (g: Float32Array) => void][] = [
    ["a NaN gradient", (g) => (g[rng.int(0, n - 1)] = NaN)],
    ["an infinite gradient", (g) => (g[rng.int(0, n - 1)] = Infinity)],
    ["a -infinite gradient", (g) => (g[rng.int(0, n - 1)] = -Infinity)],
    ["finite gradients whose squares overflow fp32", (g) => g.fill(3e38, 0, 2)],
  ];
  for (const [what, poison] of cases) {
    using opt = new AdamWState(backend, n);
    const state = new Float32Array(4 * n);
    state.set(rng.normals(n), 0);
    backend.write(opt.buffer, state);
    const grads = () => {
      const s = opt.buffer.toHost();
      s.set(rng.normals(n, 0.1), n);
      return s;
    };
    for (let i = 0; i < 3; i++) {
      backend.write(opt.buffer, grads());
      assert.ok(Number.isFinite(opt.update({ lr: 1e-2, maxGradNorm: 1 })));
    }
    const bad = grads();
    poison(bad.subarray(n, 2 * n));
    backend.write(opt.buffer, bad);
    const norm = opt.update({ lr: 1e-2, maxGradNorm: 1, weightDecay: 0.1 });
    assert.ok(!Number.isFinite(norm), `${what}: norm ${norm} ${seed}`);
    assert.deepEqual(opt.buffer.toHost(), bad, `${what}: parameters, gradients and moments untouched ${seed}`);
    assert.equal(opt.step, 3, what);
    backend.write(opt.buffer, grads());
    assert.ok(Number.isFinite(opt.update({ lr: 1e-2, maxGradNorm: 1 })), what);
    assert.equal(opt.step, 4, `${what}: the next good step is AdamW's 4th`);
    assert.ok(opt.buffer.toHost().every(Number.isFinite), what);
  }
});

Deno.test("nan guard: a poisoned LoRA weight gives a NaN loss and trainStep makes no update", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using loaded = await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: { r: 4, alpha: 8 } });
  const lora = model.lora!;
  const examples = [{ tokens: [1, 403, 407, 261, 378, 2], completionStart: 4 }];
  const step = { epoch: 0, batches: [[0]] };
  const adamw = { lr: 1e-2 };
  trainStep(model, examples, step, { adamw, seed: 1, firstMicroBatch: 0 }); // moments and B nonzero from here
  const modules = lora.modules;
  const cases: [string, (p: Float32Array) => void][] = [
    ["NaN in one B", (p) => {
      const m = modules[rng.int(0, modules.length - 1)];
      p[m.offset + lora.options.r * m.inFeatures + rng.int(0, lora.options.r * m.outFeatures - 1)] = NaN;
    }],
    [
      "+Infinity in one A",
      (p) => (p[modules[0].offset + rng.int(0, lora.options.r * modules[0].inFeatures - 1)] = Infinity),
    ],
  ];
  for (const [what, poison] of cases) {
    const params = lora.params();
    poison(params);
    lora.setParams(params);
    const before = lora.state.buffer.toHost();
    const r = trainStep(model, examples, step, { adamw, seed: 1, firstMicroBatch: 1 });
    assert.equal(r.nonFinite, "loss", `${what}: loss ${r.loss} ${seed}`);
    assert.ok(Number.isNaN(r.loss), what);
    const after = lora.state.buffer.toHost();
    const sections = (b: Float32Array) => [b.subarray(0, lora.n), b.subarray(2 * lora.n)];
    assert.deepEqual(sections(after), sections(before), `${what}: parameters and moments untouched ${seed}`);
    assert.equal(lora.state.step, 1, what);
  }
  // An update that overflows the weights (a finite gradient times 1e38) cannot be undone: it is reported.
  lora.initialize(3);
  const r = trainStep(model, examples, step, { adamw: { lr: 1e38 }, seed: 1, firstMicroBatch: 0 });
  assert.equal(r.nonFinite, "update", `loss ${r.loss}, norm ${r.gradNorm}`);
});

// A synthetic task where a keyword decides the label, small enough for ~10 optimizer steps.
const KEYWORDS: Record<string, string> = { sun: "happy", tree: "big", dog: "friend" };
const FILLER = "the girl ran to play with ball park little boy saw bird in garden".split(" ");

async function task(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lorac-nan-" });
  const rows = Array.from({ length: 24 }, (_, i) => {
    const keyword = Object.keys(KEYWORDS)[i % 3];
    const words = Array.from({ length: rng.int(2, 5) }, () => FILLER[rng.int(0, FILLER.length - 1)]);
    return `${words.join(" ")} ${keyword},${KEYWORDS[keyword]}`;
  });
  await Deno.writeTextFile(`${dir}/train.csv`, ["text,label", ...rows].join("\n") + "\n");
  await Deno.writeTextFile(`${dir}/template.txt`, "text: {text}\nlabel:\n");
  return dir;
}

const tokenizer = await storiesTokenizer();

/** Progress captured as text. */
function captured(): { sink: { writeSync(p: Uint8Array): number; isTerminal(): boolean }; text: () => string } {
  let text = "";
  const decoder = new TextDecoder();
  return {
    sink: { writeSync: (p) => (text += decoder.decode(p), p.length), isTerminal: () => false },
    text: () => text,
  };
}

// Adam moves every weight by about the rate in its first step, so at 1e30 the step-1 weights are finite but
// the forward pass of step 2 overflows to a NaN loss.
const options = (dir: string, extra: Partial<TrainOptions>): TrainOptions => ({
  basePath: dir,
  textFields: ["text"],
  labelColumn: "label",
  templateFile: `${dir}/template.txt`,
  valFile: null,
  baseModelName: STORIES_260K,
  tokenizer,
  device: "cpu",
  outputDir: `${dir}/out`,
  loraR: 4,
  loraAlpha: 8,
  learningRate: 1e30,
  batchTokens: 64,
  maxSeqLength: 32,
  numEpochs: 1,
  saveSteps: 1,
  reportTo: "none",
  numThreads: 1,
  ...extra,
});

const readJsonl = async (path: string) =>
  (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("nan guard: train() stops at a NaN loss with one line naming the step and the last good checkpoint", async () => {
  const dir = await task();
  const out = `${dir}/out`;
  const progress = captured();
  await assert.rejects(() => train(options(dir, { progress: progress.sink })), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(
        "^step 2: the loss is NaN, so training stopped before the update and nothing of this step was saved; " +
          `lower --learning_rate or check the data, .*--skip_nonfinite_steps.*; the last good checkpoint is ${out}/checkpoint-1$`,
      ),
    );
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
  // Nothing of step 2: no checkpoint, no adapter, no log record; checkpoint-1 is whole and finite.
  assert.deepEqual((await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort(), [
    "checkpoint-1",
    "metrics.jsonl",
    "training_args.json",
  ]);
  assert.deepEqual((await readJsonl(`${out}/metrics.jsonl`)).map((r) => r.step), [1]);
  assert.equal((await loadCheckpoint(`${out}/checkpoint-1`)).state.global_step, 1);
  assert.match(progress.text(), /step 1\/\d+/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("nan guard: with skipNonfiniteSteps such steps make no update, are counted, logged and resumable", async () => {
  const dir = await task();
  const out = `${dir}/out`;
  const progress = captured();
  const result = await train(options(dir, { skipNonfiniteSteps: true, progress: progress.sink }));
  const steps = result.steps;
  assert.ok(steps >= 5, `${steps} steps ${seed}`);
  const state = JSON.parse(await Deno.readTextFile(`${out}/trainer_state.json`));
  assert.equal(state.skipped_steps, steps - 1, "every step after the first skipped");
  const records = await readJsonl(`${out}/metrics.jsonl`);
  assert.deepEqual(records.map((r) => [r.step, r.skipped ?? false]), [
    [1, false],
    ...Array.from({ length: steps - 1 }, (_, i) => [i + 2, true]),
  ]);
  assert.equal(records[1].loss, null, "NaN is null in JSON");
  assert.match(progress.text(), /step 2: the loss is NaN; skipped, no update \(1 skipped so far\)/);
  assert.match(
    progress.text(),
    new RegExp(`step ${steps}: the loss is NaN; skipped, no update \\(${steps - 1} skipped`),
  );
  // No update after step 1: the adapter and the moments are step 1's, bit for bit.
  const adapterOf = (d: string) => Deno.readFile(`${d}/adapter_model.safetensors`);
  assert.deepEqual(await adapterOf(out), await adapterOf(`${out}/checkpoint-1`));
  const [first, last] = await Promise.all([1, steps].map((s) => loadCheckpoint(`${out}/checkpoint-${s}`)));
  assert.deepEqual([last.expAvg, last.expAvgSq], [first.expAvg, first.expAvgSq]);
  assert.ok(!(await exists(`${out}/best`)));

  // Resumed after two skipped steps, the run ends in the same state, skipped count included.
  await Deno.mkdir(`${dir}/resumed`);
  await Deno.rename(`${out}/checkpoint-3`, `${dir}/resumed/checkpoint-3`);
  await train(
    options(dir, {
      skipNonfiniteSteps: true,
      progress: false,
      outputDir: `${dir}/resumed`,
      resumeFromCheckpoint: true,
    }),
  );
  assert.deepEqual(await adapterOf(`${dir}/resumed`), await adapterOf(out));
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/resumed/trainer_state.json`)), state);
  await Deno.remove(dir, { recursive: true });
});
