/**
 * The SFT trainer: `train(options)` fine-tunes LoRA adapters on a frozen
 * (NF4 by default) Llama to answer a classification prompt with the label,
 * as the seed's `scripts/train.py` does with TRL's SFTTrainer.
 *
 * The run: load the model and tokenizer; read and tokenize the CSVs
 * (dataset.ts); plan every optimizer step's micro-batches (packing.ts); then
 * per step accumulate gradients and update (step.ts) at the scheduled rate
 * (schedule.ts), log (metrics_log.ts, progress_line.ts), evaluate on the
 * validation set (evaluate.ts) and save checkpoints (checkpoint.ts) when
 * due. What `outputDir` holds afterwards:
 *
 * ```text
 * adapter_config.json, adapter_model.safetensors   the final adapters (PEFT)
 * trainer_state.json                               where the run ended, best metric and step
 * training_args.json                               the options, label set and prompt template
 * best/                                            the adapters of the best evaluation, training_args.json
 * checkpoint-<step>/                               adapters + AdamW moments + state, to resume
 * metrics.jsonl, runs/<run>/events.out.tfevents.*  the logs
 * ```
 *
 * On the CPU a run is deterministic: the same options give the same bytes,
 * and a run resumed from a checkpoint ends with the same bytes as one that
 * never stopped, however it was stopped (tests/train_kill_test.ts kills
 * the command line with SIGKILL, mid-save too). Every run first tidies
 * what a kill left in `outputDir` (checkpoint.ts' cleanInterruptedWrites;
 * so no two runs may share one). Resuming from the latest checkpoint
 * (`resumeFromCheckpoint: true`), one that cannot be read is reported on
 * the console and the next older one is used (the run then writes the
 * damaged step again); a damaged checkpoint named explicitly is a one-line
 * error.
 *
 * A step whose loss or gradient norm is not finite (NaN or infinite) makes
 * no update, and the run stops with a one-line error naming the step and
 * the last good checkpoint, before anything of that step is saved; with
 * `skipNonfiniteSteps` such steps are skipped instead: counted in
 * trainer_state.json (skipped_steps), marked `"skipped": true` in
 * metrics.jsonl and reported on the console. An update that leaves a
 * non-finite weight always stops the run.
 *
 * @module
 */

import { type Backend, openBackend } from "../backend/backend.ts";
import { writePeftAdapter } from "../formats/peft_adapter.ts";
import { defaultModelSource } from "../model/default_model.ts";
import { LlamaModel } from "../model/llama.ts";
import { loadModel } from "../model/load.ts";
import type { LoraParams } from "../model/lora_params.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { ProgressSink } from "../ui/progress.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";
import {
  type Checkpoint,
  checkpointDirs,
  CheckpointError,
  cleanInterruptedWrites,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
  writeDirAtomic,
} from "./checkpoint.ts";
import { prepareSftData, type SftData } from "./dataset.ts";
import { type EvalDecoding, type EvalResult, evaluate } from "./evaluate.ts";
import { FrozenPrefix } from "./frozen_prefix.ts";
import { ExampleProgress } from "../predict/progress.ts";
import { trainingFlops } from "./flops.ts";
import { MetricsLog } from "./metrics_log.ts";
import { type BestMetric, type ResolvedTrainOptions, resolveTrainOptions, type TrainOptions } from "./options.ts";
import { type PlannedStep, planTraining } from "./packing.ts";
import { TrainProgress } from "./progress_line.ts";
import { learningRate, warmupStepsOf } from "./schedule.ts";
import { type StepResult, trainStep } from "./step.ts";

export type { TrainOptions } from "./options.ts";

/** What a finished run reports. */
export interface TrainResult {
  /** Where everything was written. */
  readonly outputDir: string;
  /** The label set the adapters answer with. */
  readonly labels: readonly string[];
  /** Optimizer steps of the run (including those before a resume). */
  readonly steps: number;
  /** The last step's training loss. */
  readonly trainLoss: number;
  /** The last evaluation, or null without a validation set. */
  readonly eval: EvalResult | null;
  /** The best evaluation: which metric, its value and step; null without a validation set. */
  readonly best: { readonly metric: BestMetric; readonly value: number; readonly step: number } | null;
  /** Wall-clock seconds of this call. */
  readonly seconds: number;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fractional epochs done after step index `s` (transformers' "epoch" in its logs). */
function epochAfter(plan: readonly PlannedStep[], s: number): number {
  const epoch = plan[s].epoch;
  let first = s, last = s;
  while (first > 0 && plan[first - 1].epoch === epoch) first--;
  while (last + 1 < plan.length && plan[last + 1].epoch === epoch) last++;
  return epoch + (s - first + 1) / (last - first + 1);
}

/**
 * The checkpoint a run resumes from, read: the one named, or with `true`
 * the latest readable one in `outputDir` (an unreadable one is reported
 * through `warn` and passed over); null for a fresh run.
 */
async function findResume(
  o: ResolvedTrainOptions,
  warn: (text: string) => void,
): Promise<{ dir: string; checkpoint: Checkpoint } | null> {
  const what = o.resumeFromCheckpoint;
  if (what === false) return null;
  if (typeof what === "string") {
    try {
      return { dir: what, checkpoint: await loadCheckpoint(what) };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      throw new Error(`${e.message}; resume from an earlier checkpoint-<step> folder, or start afresh`, { cause: e });
    }
  }
  const dirs = await checkpointDirs(o.outputDir);
  if (dirs.length === 0) throw new Error(`resume: ${o.outputDir} holds no checkpoint-<step> folder to resume from`);
  let first: CheckpointError | null = null;
  for (const dir of dirs) {
    try {
      return { dir, checkpoint: await loadCheckpoint(dir) };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      first ??= e;
      warn(`${e.message}; resuming from an earlier checkpoint, the run writes it again`);
    }
  }
  throw new Error(
    `resume: no checkpoint in ${o.outputDir} can be read (the latest: ${first!.message}); ` +
      "start afresh without resuming",
    { cause: first },
  );
}

/** Puts a checkpoint's adapters, moments and step into `lora`; returns its state after checking it fits this run. */
function restore(
  dir: string,
  ck: Checkpoint,
  backend: Backend,
  lora: LoraParams,
  fresh: TrainerState,
): TrainerState {
  if (ck.state.data_order_sha256 !== fresh.data_order_sha256) {
    throw new Error(
      `cannot resume from ${dir}: its data order differs from this run's (the training data, seed, epochs, ` +
        "batch tokens, gradient accumulation or max_seq_length changed); resume with the options it was saved with",
    );
  }
  lora.loadPeft(ck.adapter); // throws when r, alpha or the modules differ
  const buffer = new Float32Array(4 * lora.n);
  buffer.set(lora.params(), 0);
  buffer.set(ck.expAvg, 2 * lora.n);
  buffer.set(ck.expAvgSq, 3 * lora.n);
  backend.write(lora.state.buffer, buffer);
  // Skipped steps made no AdamW step, so its bias correction counts only the others.
  lora.state.step = ck.state.global_step - ck.state.skipped_steps;
  const sameMetric = ck.state.metric_for_best_model === fresh.metric_for_best_model;
  return {
    ...fresh,
    global_step: ck.state.global_step,
    epoch: ck.state.epoch,
    best_metric: sameMetric ? ck.state.best_metric : null,
    best_global_step: sameMetric ? ck.state.best_global_step : null,
    skipped_steps: ck.state.skipped_steps,
  };
}

/** The one-line error of step `step` (1-based) whose `r.nonFinite` is set. */
function nonFiniteError(step: number, r: StepResult, lr: number, lastGood: string | null): Error {
  const where = lastGood === null ? "no checkpoint was saved before it" : `the last good checkpoint is ${lastGood}`;
  if (r.nonFinite === "update") {
    return new Error(
      `step ${step}: the update at learning rate ${lr} left non-finite LoRA weights, so training stopped and ` +
        `nothing of this step was saved; lower --learning_rate; ${where}`,
    );
  }
  return new Error(
    `step ${step}: the ${r.nonFinite === "loss" ? `loss is ${r.loss}` : `gradient norm is ${r.gradNorm}`}, ` +
      "so training stopped before the update and nothing of this step was saved; lower --learning_rate or " +
      `check the data, or skip such steps with --skip_nonfinite_steps; ${where}`,
  );
}

/** The options as JSON for training_args.json (the tokenizer and console sink are not data). */
function argsJson(o: ResolvedTrainOptions, data: SftData, source: string): string {
  const { tokenizer, progress: _progress, ...rest } = o;
  const args = {
    ...rest,
    baseModelName: source,
    tokenizer: typeof tokenizer === "string" ? tokenizer : null,
    labels: data.labels,
    template: data.template.source,
    exemplars: data.template.exemplars,
  };
  return JSON.stringify(args, null, 2) + "\n";
}

/** The frozen layers' outputs of the training and validation examples, with a progress bar over both. */
function frozenPrefixes(
  model: LlamaModel,
  data: SftData,
  tokenBudget: number,
  sink: ProgressSink | null,
): { train: FrozenPrefix; validation: FrozenPrefix | undefined } {
  const total = data.train.length + (data.validation?.length ?? 0);
  const label = `frozen layers 0-${model.lora!.firstLayer - 1}`;
  const bar = sink === null ? null : new ExampleProgress(label, total, { sink });
  try {
    const progress = (n: number) => bar?.add(n);
    const train = FrozenPrefix.compute(model, data.train, tokenBudget, progress);
    const validation = data.validation
      ? FrozenPrefix.compute(model, data.validation, tokenBudget, progress)
      : undefined;
    return { train, validation };
  } finally {
    bar?.finish();
  }
}

/**
 * Trains LoRA adapters as the options say (see {@link TrainOptions}) and
 * writes them, the checkpoints and the logs under `outputDir`.
 *
 * @example
 * ```ts ignore
 * import { train } from "./trainer.ts";
 * const result = await train({
 *   basePath: "../shared/data/arxiv5",
 *   baseModelName: "HuggingFaceTB/SmolLM2-135M-Instruct",
 *   outputDir: "runs/arxiv5",
 *   loraR: 16,
 *   loraAlpha: 32,
 * });
 * result.best; // { metric: "eval_accuracy", value: 0.93, step: 1088 }
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const o = resolveTrainOptions(options);
  using backend = await openBackend(o.device, { numThreads: o.numThreads, computeDtype: o.computeDtype });
  const source = o.baseModelName ?? await defaultModelSource();
  const ownTokenizer = typeof o.tokenizer === "object" ? o.tokenizer : null;
  using loaded = await loadModel(source, backend, {
    tokenizer: ownTokenizer ? false : o.tokenizer as string | undefined,
    baseDtype: o.baseDtype,
    progress: o.progress,
  });
  const config = loaded.config;
  const tokenizer = (ownTokenizer ?? loaded.tokenizer) as Tokenizer;
  const eosId = tokenizer.eosId ?? config.eosTokenIds[0];
  if (eosId === undefined) throw new Error(`${source}: neither the tokenizer nor config.json names an EOS token`);
  const data = await prepareSftData(o, tokenizer, eosId);
  const plan = planTraining(data.train.map((e) => e.tokens.length), { tokenBudget: o.batchTokens }, {
    epochs: o.numEpochs,
    gradAccum: o.gradientAccumulationSteps,
    seed: o.seed,
  });
  using model = new LlamaModel(backend, config, loaded.weights, {
    lora: {
      r: o.loraR,
      alpha: o.loraAlpha,
      dropout: o.loraDropout,
      rslora: o.useRslora,
      targets: o.loraTargets,
      layers: o.layersToTransform,
    },
    loraSeed: o.seed,
    recompute: o.recompute,
  });
  const lora = model.lora!;
  let state: TrainerState = {
    global_step: 0,
    epoch: 0,
    max_steps: plan.length,
    num_train_epochs: o.numEpochs,
    seed: o.seed,
    data_order_sha256: await sha256Hex(JSON.stringify(plan)),
    metric_for_best_model: o.metricForBestModel,
    best_metric: null,
    best_global_step: null,
    trainable_parameters: lora.n,
    skipped_steps: 0,
  };
  const sink: ProgressSink | null = o.progress === false ? null : o.progress === true ? Deno.stderr : o.progress;
  const say = (text: string) => {
    const bytes = new TextEncoder().encode(`${text}\n`);
    for (let done = 0; sink !== null && done < bytes.length;) done += sink.writeSync(bytes.subarray(done));
  };
  await cleanInterruptedWrites(o.outputDir);
  const resume = await findResume(o, say);
  if (resume) state = restore(resume.dir, resume.checkpoint, backend, lora, state);

  await Deno.mkdir(o.outputDir, { recursive: true });
  const args = argsJson(o, data, source);
  await writeFileAtomic(`${o.outputDir}/training_args.json`, args);
  using log = await MetricsLog.open(o.outputDir, {
    tensorboard: o.reportTo === "tensorboard",
    resumeStep: resume ? state.global_step : undefined,
  });
  const bar = sink === null ? null : new TrainProgress(plan.length, { sink, startStep: state.global_step });
  if (data.truncated > 0) {
    bar?.message(`${data.truncated} texts were shortened to fit max_seq_length ${o.maxSeqLength}`);
  }

  const prefix = o.cacheFrozenLayers && lora.firstLayer > 0 ? frozenPrefixes(model, data, o.batchTokens, sink) : null;

  const schedule = {
    type: o.lrSchedulerType,
    peakLr: o.learningRate,
    totalSteps: plan.length,
    warmupSteps: warmupStepsOf(plan.length, o),
  };
  const decoding: EvalDecoding = o.evalDecode === "score"
    ? { kind: "score", answers: data.labels, completions: data.labelCompletions! }
    : { kind: "generate", stopTokens: [...new Set([eosId, ...config.eosTokenIds])] };
  const lastLogged = log.kept.findLast((r) => r.type === "train")?.loss;
  let trainLoss = typeof lastLogged === "number" ? lastLogged : NaN;
  let lastEval: EvalResult | null = null, tokens = 0, seconds = 0;
  let lastGood = resume?.dir ?? null;

  try {
    for (let s = state.global_step; s < plan.length; s++) {
      const t0 = performance.now();
      const lr = learningRate(schedule, s);
      const r = trainStep(model, data.train, plan[s], {
        adamw: {
          lr,
          beta1: o.adamBeta1,
          beta2: o.adamBeta2,
          eps: o.adamEpsilon,
          weightDecay: o.weightDecay,
          maxGradNorm: o.maxGradNorm,
        },
        seed: o.seed,
        firstMicroBatch: s * o.gradientAccumulationSteps,
        prefix: prefix?.train,
      });
      const skipped = r.nonFinite === "loss" || r.nonFinite === "gradient";
      if (r.nonFinite !== null && !(skipped && o.skipNonfiniteSteps)) throw nonFiniteError(s + 1, r, lr, lastGood);
      const dt = (performance.now() - t0) / 1000;
      tokens += r.work.tokens;
      seconds += dt;
      if (!skipped) trainLoss = r.loss;
      state = {
        ...state,
        global_step: s + 1,
        epoch: epochAfter(plan, s),
        skipped_steps: state.skipped_steps + (skipped ? 1 : 0),
      };
      const flops = trainingFlops(config, lora.n, r.work);
      log.train({
        step: s + 1,
        epoch: state.epoch,
        loss: r.loss,
        learningRate: lr,
        gradNorm: r.gradNorm,
        tokens: r.work.tokens,
        tokensPerSecond: r.work.tokens / dt,
        mfu: o.peakFlops ? flops / dt / o.peakFlops : null,
        skipped,
      });
      if (skipped) {
        bar?.message(
          `step ${s + 1}: the ${r.nonFinite === "loss" ? `loss is ${r.loss}` : `gradient norm is ${r.gradNorm}`}; ` +
            `skipped, no update (${state.skipped_steps} skipped so far)`,
        );
      }
      bar?.update({ step: s + 1, loss: r.loss, learningRate: lr, tokensPerSecond: tokens / seconds });

      const last = s + 1 === plan.length;
      const epochEnd = last || plan[s + 1].epoch !== plan[s].epoch;
      if (data.validation && (last || (o.evalSteps > 0 ? (s + 1) % o.evalSteps === 0 : epochEnd))) {
        lastEval = evaluate(model, data.validation, o.batchTokens, decoding, prefix?.validation);
        log.eval({ step: s + 1, epoch: state.epoch, loss: lastEval.loss, accuracy: lastEval.accuracy });
        const value = o.metricForBestModel === "eval_loss" ? lastEval.loss : lastEval.accuracy;
        const better = state.best_metric === null ||
          (o.metricForBestModel === "eval_loss" ? value < state.best_metric : value > state.best_metric);
        if (better) {
          state = { ...state, best_metric: value, best_global_step: s + 1 };
          // With the run's settings beside them, `predict --output_dir <run>/best` works as on the run itself.
          await writeDirAtomic(`${o.outputDir}/best`, async (tmp) => {
            await writePeftAdapter(tmp, lora.toPeft(source));
            await writeFileAtomic(`${tmp}/training_args.json`, args);
          });
        }
        bar?.message(
          `step ${s + 1}: eval loss ${lastEval.loss.toFixed(4)}, accuracy ${lastEval.accuracy.toFixed(4)}` +
            (better ? ` (best ${o.metricForBestModel} so far)` : ""),
        );
      }
      if (last || (o.saveSteps > 0 ? (s + 1) % o.saveSteps === 0 : epochEnd)) {
        const moments = lora.state.buffer.toHost();
        const dir = `${o.outputDir}/checkpoint-${s + 1}`;
        await saveCheckpoint(dir, {
          adapter: lora.toPeft(source),
          expAvg: moments.slice(2 * lora.n, 3 * lora.n),
          expAvgSq: moments.slice(3 * lora.n, 4 * lora.n),
          state,
        });
        lastGood = dir;
      }
    }
  } finally {
    bar?.finish();
  }
  await writePeftAdapter(o.outputDir, lora.toPeft(source));
  await writeFileAtomic(`${o.outputDir}/trainer_state.json`, JSON.stringify(state, null, 2) + "\n");
  return {
    outputDir: o.outputDir,
    labels: data.labels,
    steps: plan.length,
    trainLoss,
    eval: lastEval,
    best: state.best_metric === null
      ? null
      : { metric: o.metricForBestModel, value: state.best_metric, step: state.best_global_step! },
    seconds: (performance.now() - started) / 1000,
  };
}
