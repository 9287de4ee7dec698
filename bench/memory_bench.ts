/**
 * Memory over a long run on the real tiny model stories260K (CPU): does
 * anything grow that should not? Three phases on one backend, sampling the
 * native library's live allocation count (lorac_live_allocations), the
 * process's resident set (all of it, and its anonymous part), its JS heap
 * (after a forced GC when V8 exposes one) and its open files:
 *
 * 1. `cycles` times: a model load aborted midway (its callback throws), then
 *    load the NF4 model, train one step, attach the adapters to a second
 *    model through PEFT's format (as predict does), prefill a session, and
 *    dispose everything. The live count should be the fresh backend's after
 *    each cycle.
 * 2. `steps` LoRA training steps (LlamaModel + trainStep; dropout, gradient
 *    accumulation, batches of varying length), sampled every `sampleEvery`
 *    steps; every `evalEvery` steps a round of every inference path
 *    (evaluate in both decode modes, predict's decodeBatch, generateGreedy,
 *    scoreContinuations, sequenceLogits, a session with reset, prefill,
 *    copySlot and decode), which should leave the live count as it found it.
 * 3. dispose the model and the weights: back to the fresh backend's count.
 *
 *   deno run -A --v8-flags=--expose-gc bench/memory_bench.ts                    2000 steps, 50 cycles: a table
 *   deno run -A --v8-flags=--expose-gc bench/memory_bench.ts --steps 20000 --threads 1 --json
 *
 * Flags: --steps, --sample-every (50), --eval-every (100), --cycles (50),
 * --tokens (micro-batch token budget, 256), --threads (0: all cores),
 * --json (the report as one JSON line). It asserts nothing:
 * tests/memory_test.ts runs a short version in a child process and judges
 * its JSON.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Backend, openBackend } from "../lib/backend/backend.ts";
import { generateGreedy, scoreContinuations, sequenceLogits } from "../lib/model/generate.ts";
import { InferenceSession } from "../lib/model/inference.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel, type TensorLoadEvent } from "../lib/model/load.ts";
import { LoraParams } from "../lib/model/lora_params.ts";
import { decodeBatch } from "../lib/predict/decode.ts";
import { type EvalDecoding, evaluate } from "../lib/train/evaluate.ts";
import { type PlannedStep, planTraining } from "../lib/train/packing.ts";
import type { SftExample } from "../lib/train/sft_examples.ts";
import { trainStep } from "../lib/train/step.ts";

/** The stories260K model folder (HF layout) in ../shared. */
export const STORIES_260K = new URL("../../shared/models/stories260K/hf", import.meta.url).pathname;

/** What {@link measureMemory} runs. */
export interface MemoryOptions {
  /** Training steps of phase 2. */
  steps: number;
  /** Steps between two samples. */
  sampleEvery: number;
  /** Steps between two evaluation and inference rounds. */
  evalEvery: number;
  /** Load / use / dispose cycles of phase 1. */
  cycles: number;
  /** Most tokens in one micro-batch (two make a step). */
  tokenBudget: number;
  /** CPU threads (0: all cores). */
  numThreads: number;
}

/** What a sample measures (after a forced GC when V8 exposes one). */
export interface MemorySample {
  /** Phase 1: cycles done; phase 2: training steps done. */
  readonly step: number;
  /** Native allocations alive. */
  readonly live: number;
  /** Resident set, bytes (Deno.memoryUsage().rss). */
  readonly rss: number;
  /**
   * Its anonymous part (RssAnon of /proc/self/status; -1 where that is not
   * there): the heaps, without the pages of the deno binary and other mapped
   * files, which the kernel drops and reloads as the machine's memory
   * pressure comes and goes.
   */
  readonly rssAnon: number;
  /** V8 heap in use, bytes. */
  readonly heapUsed: number;
  /** Open file descriptors of the process (-1 where /proc/self/fd is not there). */
  readonly fds: number;
}

/** What {@link measureMemory} measured. */
export interface MemoryReport {
  /** Live allocations of the fresh backend. */
  readonly baseline: number;
  /** Phase 1: a sample after each load / use / dispose cycle. */
  readonly cycles: readonly MemorySample[];
  /** Live allocations with the model loaded and the adapters made, before any step. */
  readonly modelLive: number;
  /** Phase 2: a sample every sampleEvery steps. */
  readonly samples: readonly MemorySample[];
  /** Per evaluation and inference round: [step, live before, live after]. */
  readonly rounds: readonly (readonly [number, number, number])[];
  /** Live allocations after disposing the model and the weights. */
  readonly endLive: number;
  /** Whether a forced GC preceded each sample (V8 ran with --expose-gc). */
  readonly gc: boolean;
  /** Wall-clock seconds. */
  readonly seconds: number;
}

/** The labels of the synthetic task: single tokens of stories260K's vocabulary, and EOS 2 after them. */
const LABELS = [383, 432, 286, 378];
const EOS = 2;

/**
 * Synthetic classification examples: BOS, 6 to 45 random tokens, then a
 * label token decided by the first text token, then EOS.
 */
function syntheticExamples(n: number, seed: number): SftExample[] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, () => {
    const text = Array.from({ length: 6 + Math.floor(next() * 40) }, () => 3 + Math.floor(next() * 509));
    const label = LABELS[text[0] % LABELS.length];
    const tokens = [1, ...text, label, EOS];
    return { tokens, completionStart: tokens.length - 2, answer: String(label), truncated: false };
  });
}

/** V8's gc(), there when the process runs with --v8-flags=--expose-gc. */
const forceGc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** RssAnon of this process in bytes (Linux), or -1. */
function anonymousResident(): number {
  try {
    const kb = /^RssAnon:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/self/status"));
    return kb ? Number(kb[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** Open file descriptors of this process (Linux), or -1. */
function openFiles(): number {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return -1;
  }
}

const ADAMW = { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1 };
const LORA = { r: 4, alpha: 8, dropout: 0.1 };
const COMPLETIONS = LABELS.map((l) => [l, EOS]);
const SCORE: EvalDecoding = { kind: "score", answers: LABELS.map(String), completions: COMPLETIONS };
const GENERATE = { decode: (ids: number[]) => ids.join(" "), stopTokens: [EOS] };

/**
 * Cycle c of phase 1: a load aborted at tensor c (what a failing load
 * leaves), then load, train a step, attach the adapters through PEFT's
 * format to a second model, prefill a session; everything disposed on the
 * way out.
 */
async function loadUseDispose(backend: Backend, c: number, train: readonly SftExample[]): Promise<void> {
  const aborted = new Error("aborted on purpose");
  const abort = (e: TensorLoadEvent) => {
    if (e.index === c % e.count) throw aborted;
  };
  await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false, onTensor: abort }).then(
    () => Promise.reject(new Error("the aborted load finished")),
    (e) => e === aborted ? undefined : Promise.reject(e),
  );
  using loaded = await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: LORA, loraSeed: c });
  const step = { epoch: 0, batches: [[c % train.length, (c + 1) % train.length]] };
  trainStep(model, train, step, { adamw: ADAMW, seed: c, firstMicroBatch: 0 });
  using attached = LoraParams.fromPeft(backend, loaded.config, model.lora!.toPeft(STORIES_260K));
  using tuned = new LlamaModel(backend, loaded.config, loaded.weights, { lora: attached });
  using session = new InferenceSession(tuned, { maxSeqs: 2, maxLen: 64 });
  session.prefill([train[0].tokens, train[1].tokens], { rows: [0] });
}

/** Every inference path once: evaluation in both modes, predict's decoding, the generate.ts helpers, a session. */
function inferenceRound(model: LlamaModel, validation: readonly SftExample[], tokenBudget: number): void {
  const prompts = validation.map((e) => e.tokens.slice(0, e.completionStart));
  const labels = LABELS.map(String);
  evaluate(model, validation, tokenBudget, SCORE);
  evaluate(model, validation, tokenBudget, { kind: "generate", ...GENERATE });
  decodeBatch(model, prompts, { mode: "score", labels, completions: COMPLETIONS });
  decodeBatch(model, prompts, { mode: "generate", labels, multiLabel: false, maxNewTokens: 3, ...GENERATE });
  generateGreedy(model, prompts, { maxNewTokens: 4, stopTokens: [EOS], cacheDtype: "bf16" });
  scoreContinuations(model, prompts, COMPLETIONS, "bf16");
  sequenceLogits(model, prompts.slice(0, 3));
  using session = new InferenceSession(model, { maxSeqs: 3, maxLen: 60 });
  for (const pair of [prompts.slice(0, 2), prompts.slice(2, 4)]) {
    session.reset();
    const logits = session.prefill(pair, { rows: [pair[0].length - 1] });
    session.copySlot(0, 2);
    session.decode([logits.indexOf(Math.max(...logits)), 5, 6], { rows: [0, 1, 2], tokens: [EOS, EOS, EOS] });
  }
}

/** The first `steps` steps of training on `train`, as many epochs as that takes (two micro-batches a step). */
function planSteps(train: readonly SftExample[], steps: number, tokenBudget: number): PlannedStep[] {
  const lengths = train.map((e) => e.tokens.length);
  const plan = (epochs: number) => planTraining(lengths, { tokenBudget }, { epochs, gradAccum: 2, seed: 3 });
  let epochs = 1;
  while (plan(epochs).length < steps) epochs *= 2;
  return plan(epochs).slice(0, steps);
}

/**
 * Runs the three phases (see the module notes) and returns what was
 * sampled; asserts nothing.
 *
 * @example
 * ```ts
 * import { measureMemory } from "./memory_bench.ts";
 * const options = { steps: 20, sampleEvery: 10, evalEvery: 20, cycles: 1, tokenBudget: 64, numThreads: 1 };
 * const r = await measureMemory(options);
 * r.samples.map((s) => s.live); // [206, 206]: the adapters, weights and activations, steady
 * r.endLive === r.baseline; // true
 * ```
 */
export async function measureMemory(options: MemoryOptions): Promise<MemoryReport> {
  const started = performance.now();
  using backend = await openBackend("cpu", { numThreads: options.numThreads });
  const baseline = backend.liveAllocations();
  const sample = (step: number): MemorySample => {
    forceGc?.();
    const m = Deno.memoryUsage();
    const live = backend.liveAllocations();
    return { step, live, rss: m.rss, rssAnon: anonymousResident(), heapUsed: m.heapUsed, fds: openFiles() };
  };
  const train = syntheticExamples(96, 1);
  const validation = syntheticExamples(12, 2);

  const cycles: MemorySample[] = [];
  for (let c = 0; c < options.cycles; c++) {
    await loadUseDispose(backend, c, train);
    cycles.push(sample(c + 1));
  }

  const samples: MemorySample[] = [];
  const rounds: [number, number, number][] = [];
  let modelLive: number;
  {
    using loaded = await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false });
    using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: LORA, loraSeed: 7 });
    modelLive = backend.liveAllocations();
    planSteps(train, options.steps, options.tokenBudget).forEach((step, s) => {
      trainStep(model, train, step, { adamw: ADAMW, seed: 3, firstMicroBatch: 2 * s });
      if ((s + 1) % options.evalEvery === 0) {
        const before = backend.liveAllocations();
        inferenceRound(model, validation, options.tokenBudget);
        rounds.push([s + 1, before, backend.liveAllocations()]);
      }
      if ((s + 1) % options.sampleEvery === 0) samples.push(sample(s + 1));
    });
  }
  return {
    baseline,
    cycles,
    modelLive,
    samples,
    rounds,
    endLive: backend.liveAllocations(),
    gc: forceGc !== undefined,
    seconds: (performance.now() - started) / 1000,
  };
}

const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "2000" },
      "sample-every": { type: "string", default: "50" },
      "eval-every": { type: "string", default: "100" },
      cycles: { type: "string", default: "50" },
      tokens: { type: "string", default: "256" },
      threads: { type: "string", default: "0" },
      json: { type: "boolean", default: false },
    },
  });
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number, got ${v}`);
    return n;
  };
  const r = await measureMemory({
    steps: int("steps", values.steps),
    sampleEvery: Math.max(1, int("sample-every", values["sample-every"])),
    evalEvery: Math.max(1, int("eval-every", values["eval-every"])),
    cycles: int("cycles", values.cycles),
    tokenBudget: int("tokens", values.tokens),
    numThreads: int("threads", values.threads),
  });
  if (values.json) {
    console.log(JSON.stringify(r));
    return;
  }
  const table = (title: string, rows: readonly MemorySample[]) => {
    console.log(`${title}\n${"".padStart(6)}   live   RSS MiB   anon MiB   heap MiB   fds`);
    for (const s of rows) {
      console.log(
        `${String(s.step).padStart(6)} ${String(s.live).padStart(6)} ${MiB(s.rss).padStart(9)} ` +
          `${MiB(s.rssAnon).padStart(10)} ${MiB(s.heapUsed).padStart(10)} ${String(s.fds).padStart(5)}`,
      );
    }
  };
  console.log(
    `live allocations: fresh backend ${r.baseline}, model ready ${r.modelLive}, ` +
      `after disposing it ${r.endLive}` + (r.gc ? "" : " (run with --v8-flags=--expose-gc for a steady heap)"),
  );
  table("load / use / dispose cycles", r.cycles);
  table("training steps", r.samples);
  const changed = r.rounds.filter(([, before, after]) => before !== after).length;
  console.log(
    `${r.rounds.length} evaluation + inference rounds, ${changed} changed the live count; ` +
      `${r.seconds.toFixed(1)} s`,
  );
}

if (import.meta.main) await main();
