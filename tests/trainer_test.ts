import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { readPeftAdapter } from "../lib/formats/peft_adapter.ts";
import { generateGreedy } from "../lib/model/generate.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { LoraParams } from "../lib/model/lora_params.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint.ts";
import { train, type TrainOptions } from "../lib/train/trainer.ts";
import { Rng } from "./reference/random.ts";
import { STORIES_260K, storiesTokenizer } from "./reference/stories_tokenizer.ts";

const tokenizer = await storiesTokenizer();

// The synthetic task: a few story words around one keyword, and the keyword decides the class. Each label
// is one token of stories260K's 512-token vocabulary ("▁happy", ...), and no keyword is a label.
const KEYWORDS: Record<string, string> = { sun: "happy", tree: "big", dog: "friend", cake: "mom" };
const FILLER = "the girl ran to play with ball park little boy saw bird in garden and was very car toy red went home"
  .split(" ");

function row(rng: Rng): string {
  const keyword = Object.keys(KEYWORDS)[rng.int(0, 3)];
  const words = Array.from({ length: rng.int(4, 9) }, () => FILLER[rng.int(0, FILLER.length - 1)]);
  words.splice(rng.int(0, words.length), 0, keyword);
  return `${words.join(" ")},${KEYWORDS[keyword]}`;
}

/** Writes train.csv, validation.csv and a short prompt template into a new folder. */
async function syntheticTask(rng: Rng, nTrain: number, nVal: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lorac-trainer-" });
  const csv = (n: number) => "text,label\n" + Array.from({ length: n }, () => row(rng)).join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/train.csv`, csv(nTrain));
  await Deno.writeTextFile(`${dir}/validation.csv`, csv(nVal));
  // The seed's template spends ~70 tokens on its instruction; this one keeps the test fast.
  await Deno.writeTextFile(`${dir}/template.txt`, "text: {text}\nlabel:\n");
  return dir;
}

function options(dir: string, extra: Partial<TrainOptions>): TrainOptions {
  return {
    basePath: dir,
    textFields: ["text"],
    labelColumn: "label",
    templateFile: `${dir}/template.txt`,
    baseModelName: STORIES_260K,
    tokenizer,
    device: "cpu",
    outputDir: `${dir}/out`,
    loraR: 8,
    loraAlpha: 16,
    learningRate: 1e-2,
    batchTokens: 1024,
    maxSeqLength: 64,
    reportTo: "none",
    progress: false,
    // One thread: with other test files running beside it on two cores, more threads mostly wait on each other.
    numThreads: 1,
    ...extra,
  };
}

const readJsonl = async (path: string) =>
  (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l) as Record<string, number | string>);

Deno.test("trainer: stories260K learns a keyword classification task to > 95% validation accuracy", async () => {
  const rng = new Rng();
  const dir = await syntheticTask(rng, 240, 80);
  const result = await train(options(dir, {
    numEpochs: 4,
    evalDecode: "score",
    reportTo: "tensorboard",
    peakFlops: 1e11,
  }));
  console.log(`synthetic task: accuracy ${result.eval?.accuracy} in ${result.seconds.toFixed(1)} s (seed ${rng.seed})`);
  assert.ok(result.eval!.accuracy > 0.95, `validation accuracy ${result.eval!.accuracy} (seed ${rng.seed})`);
  assert.deepEqual(result.labels, ["big", "friend", "happy", "mom"]);
  assert.equal(result.best?.metric, "eval_accuracy");

  // The final adapter in output_dir is the trained one: greedy generation starts every answer with the label.
  // (Scoring decides the accuracy above because stories260K cannot end an answer: its EOS embedding is an
  // untrained row that no hidden state can make the likeliest token, so greedy answers run on as "big...".)
  using backend = await openBackend("cpu");
  using loaded = await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false });
  using lora = LoraParams.fromPeft(backend, loaded.config, await readPeftAdapter(`${dir}/out`));
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora });
  const rows = (await Deno.readTextFile(`${dir}/validation.csv`)).trim().split("\n").slice(1).map((l) => l.split(","));
  const prompts = rows.map(([text]) => tokenizer.encode(`text: ${text}.\nlabel:`));
  const answers = generateGreedy(model, prompts, { maxNewTokens: 1 });
  const right = answers.filter((ids, i) => tokenizer.decode(ids).trim() === rows[i][1]).length;
  assert.ok(right / rows.length > 0.95, `greedy first tokens: ${right}/${rows.length} right (seed ${rng.seed})`);

  // Logs: a train record per step, an eval record per epoch, and TensorBoard events.
  const records = await readJsonl(`${dir}/out/metrics.jsonl`);
  const steps = records.filter((r) => r.type === "train");
  assert.equal(steps.length, result.steps);
  assert.ok(steps.every((r) => (r.mfu as number) > 0 && (r.mfu as number) < 1), `MFU ${steps.map((r) => r.mfu)}`);
  const state = JSON.parse(await Deno.readTextFile(`${dir}/out/trainer_state.json`));
  assert.equal(state.global_step, result.steps);
  assert.equal(state.best_metric, result.best?.value);
  assert.equal(records.filter((r) => r.type === "eval").length, 4);
  const runs = [...Deno.readDirSync(`${dir}/out/runs`)];
  assert.equal(runs.length, 1);
  assert.match([...Deno.readDirSync(`${dir}/out/runs/${runs[0].name}`)][0].name, /^events\.out\.tfevents\./);
  await Deno.remove(dir, { recursive: true });
});

/** Options of a short run that exercises dropout, gradient accumulation, warmup and a cosine schedule. */
const shortRun = (dir: string, extra: Partial<TrainOptions> = {}) =>
  options(dir, {
    numEpochs: 2,
    batchTokens: 256,
    gradientAccumulationSteps: 2,
    loraDropout: 0.1,
    weightDecay: 0.01,
    warmupSteps: 2,
    lrSchedulerType: "cosine",
    saveSteps: 3,
    evalSteps: 4,
    seed: 1234,
    ...extra,
  });

const adapterBytes = (dir: string) => Deno.readFile(`${dir}/adapter_model.safetensors`);

Deno.test("trainer: the same seed gives identical adapter bytes, on two threads too; another seed does not", async () => {
  const dir = await syntheticTask(new Rng(5), 60, 12);
  const a = await train(shortRun(dir, { outputDir: `${dir}/a` }));
  await train(shortRun(dir, { outputDir: `${dir}/b` }));
  await train(shortRun(dir, { outputDir: `${dir}/c`, seed: 99 }));
  // Two threads split the kernels' work differently, and must still repeat themselves bit for bit.
  await train(shortRun(dir, { outputDir: `${dir}/a2`, numThreads: 2, numEpochs: 1, valFile: null }));
  await train(shortRun(dir, { outputDir: `${dir}/b2`, numThreads: 2, numEpochs: 1, valFile: null }));
  assert.deepEqual(await adapterBytes(`${dir}/b2`), await adapterBytes(`${dir}/a2`));
  assert.ok(a.steps >= 6, `${a.steps} steps`);
  assert.deepEqual(await adapterBytes(`${dir}/b`), await adapterBytes(`${dir}/a`));
  assert.notDeepEqual(await adapterBytes(`${dir}/c`), await adapterBytes(`${dir}/a`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: LoRA on the top layers gives the same bytes from the frozen-layer cache as without it", async () => {
  const dir = await syntheticTask(new Rng(8), 60, 12);
  const top = { layersToTransform: [3, 4], numEpochs: 2 };
  const cached = await train(shortRun(dir, { ...top, outputDir: `${dir}/cached` }));
  await train(shortRun(dir, { ...top, outputDir: `${dir}/plain`, cacheFrozenLayers: false }));
  assert.deepEqual(await adapterBytes(`${dir}/cached`), await adapterBytes(`${dir}/plain`));
  assert.deepEqual(await adapterBytes(`${dir}/cached/best`), await adapterBytes(`${dir}/plain/best`));
  assert.equal(
    cached.eval?.accuracy,
    (await readJsonl(`${dir}/plain/metrics.jsonl`)).findLast((r) => r.type === "eval")
      ?.eval_accuracy,
  );
  const adapter = await readPeftAdapter(`${dir}/cached`);
  assert.deepEqual(adapter.config.layersToTransform, [3, 4]);
  assert.deepEqual(new Set(adapter.modules.map((m) => m.module.split(".")[2])), new Set(["3", "4"]));
  // best/ carries the run's settings, so predict can use it as an output_dir of its own.
  assert.equal(
    await Deno.readTextFile(`${dir}/cached/best/training_args.json`),
    await Deno.readTextFile(`${dir}/cached/training_args.json`),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: resuming from a checkpoint ends with the bytes of the run that never stopped", async () => {
  const dir = await syntheticTask(new Rng(6), 60, 12);
  const straight = await train(shortRun(dir, { outputDir: `${dir}/straight` }));
  // A run stopped after step 3 leaves checkpoint-3 and a log that runs a bit further; resume from them elsewhere.
  await Deno.mkdir(`${dir}/resumed`);
  await Deno.rename(`${dir}/straight/checkpoint-3`, `${dir}/resumed/checkpoint-3`);
  await Deno.copyFile(`${dir}/straight/metrics.jsonl`, `${dir}/resumed/metrics.jsonl`);
  const resumed = await train(shortRun(dir, { outputDir: `${dir}/resumed`, resumeFromCheckpoint: true }));
  assert.equal(resumed.steps, straight.steps);
  assert.deepEqual(await adapterBytes(`${dir}/resumed`), await adapterBytes(`${dir}/straight`));
  const last = `checkpoint-${straight.steps}`;
  const [x, y] = await Promise.all([
    loadCheckpoint(`${dir}/straight/${last}`),
    loadCheckpoint(`${dir}/resumed/${last}`),
  ]);
  assert.deepEqual([x.expAvg, x.expAvgSq], [y.expAvg, y.expAvgSq], "AdamW moments");
  assert.deepEqual(x.state, y.state);
  // The log reads as the straight run's: records after step 3 were dropped, then written again the same.
  const log = async (d: string) =>
    (await readJsonl(`${d}/metrics.jsonl`)).map((
      r,
    ) => [r.type, r.step, r.loss, r.grad_norm, r.eval_loss, r.eval_accuracy]);
  assert.deepEqual(await log(`${dir}/resumed`), await log(`${dir}/straight`));

  // Other data (or options that change the data order) cannot resume that checkpoint.
  const other = new Rng(7);
  await Deno.writeTextFile(
    `${dir}/train.csv`,
    "text,label\n" + Array.from({ length: 60 }, () => row(other)).join("\n"),
  );
  await assert.rejects(
    () => train(shortRun(dir, { outputDir: `${dir}/other`, resumeFromCheckpoint: `${dir}/resumed/checkpoint-3` })),
    /data order differs/,
  );
  await assert.rejects(
    () => train(shortRun(dir, { outputDir: `${dir}/none`, resumeFromCheckpoint: true })),
    /no checkpoint/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: a failure while saving a checkpoint leaves the previous one intact and no partial folder", async () => {
  const dir = await Deno.makeTempDir();
  const module = { module: "model.layers.0.self_attn.q_proj", r: 1, inFeatures: 2, outFeatures: 2 };
  const adapter = (a: number[]) => ({
    config: {
      r: 1,
      loraAlpha: 1,
      loraDropout: 0,
      targetModules: ["q_proj"],
      useRslora: false,
      baseModelNameOrPath: null,
    },
    modules: [{ ...module, a: new Float32Array(a), b: new Float32Array([5, 6]) }],
  });
  const state = {
    global_step: 4,
    epoch: 1,
    max_steps: 8,
    num_train_epochs: 2,
    seed: 1,
    data_order_sha256: "ab",
    metric_for_best_model: "eval_accuracy",
    best_metric: 0.5,
    best_global_step: 4,
    trainable_parameters: 4,
    skipped_steps: 0,
  };
  const moments = { expAvg: new Float32Array([1, 2, 3, 4]), expAvgSq: new Float32Array([5, 6, 7, 8]) };
  await saveCheckpoint(`${dir}/checkpoint-4`, { adapter: adapter([1, 2]), ...moments, state });
  const before = await loadCheckpoint(`${dir}/checkpoint-4`);
  const failures = [
    // [what, folder]: A with 3 values for r=1, in=2 fails inside the adapter write, after the first files.
    ["overwriting the same step", `${dir}/checkpoint-4`],
    ["a new step", `${dir}/checkpoint-8`],
  ];
  for (const [what, target] of failures) {
    await assert.rejects(
      () => saveCheckpoint(target, { adapter: adapter([1, 2, 3]), ...moments, state: { ...state, global_step: 8 } }),
      /A has 3 values/,
      what,
    );
    assert.deepEqual(await loadCheckpoint(`${dir}/checkpoint-4`), before, what);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint-4"], `${what}: no partial folder`);
  }
  // A successful save over an existing checkpoint replaces it whole.
  await saveCheckpoint(`${dir}/checkpoint-4`, { adapter: adapter([9, 9]), ...moments, state });
  assert.deepEqual((await loadCheckpoint(`${dir}/checkpoint-4`)).adapter.modules[0].a, new Float32Array([9, 9]));
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint-4"]);
  await Deno.remove(dir, { recursive: true });
});
