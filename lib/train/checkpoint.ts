/**
 * Training checkpoints: `<output_dir>/checkpoint-<step>/` holds the adapter
 * in PEFT's format (adapter_config.json, adapter_model.safetensors), the
 * AdamW moments (optimizer.safetensors: exp_avg and exp_avg_sq, each the
 * flat [n] fp32 buffer in lib/model/lora_params.ts' order) and
 * trainer_state.json (where the run stands). With the same data and
 * options, that is all a resumed run needs to continue bit for bit: the
 * data order is a pure function of the seed (packing.ts, fingerprinted in
 * the state), dropout masks are seeded from (seed, step, micro-batch), and
 * the rate comes from the step.
 *
 * Saving is atomic: everything is written to a hidden temporary folder
 * beside the target and renamed into place, so a crash or an error midway
 * leaves the previous checkpoints as they were and no half checkpoint.
 *
 * @module
 */

import { type PeftAdapter, readPeftAdapter, writePeftAdapter } from "../formats/peft_adapter.ts";
import { SafetensorsFile, writeSafetensors } from "../formats/safetensors.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";

/** trainer_state.json: where a run stands (snake_case keys, as transformers' file). */
export interface TrainerState {
  /** Optimizer steps done. */
  global_step: number;
  /** Epochs done, fractional. */
  epoch: number;
  /** Optimizer steps of the whole run. */
  max_steps: number;
  /** Epochs of the whole run. */
  num_train_epochs: number;
  /** The run's seed. */
  seed: number;
  /** SHA-256 of the run's data order (every step's micro-batches of example indices). */
  data_order_sha256: string;
  /** The validation metric that picks the best checkpoint, e.g. "eval_accuracy". */
  metric_for_best_model: string;
  /** Its best value so far, or null before the first evaluation. */
  best_metric: number | null;
  /** The step of that best value. */
  best_global_step: number | null;
  /** Trainable (LoRA) parameters. */
  trainable_parameters: number;
}

/** What a checkpoint holds. */
export interface Checkpoint {
  /** The adapters. */
  readonly adapter: PeftAdapter;
  /** AdamW's first moments, [n]. */
  readonly expAvg: Float32Array;
  /** AdamW's second moments, [n]. */
  readonly expAvgSq: Float32Array;
  /** Where the run stands. */
  readonly state: TrainerState;
}

/** The optimizer moments file. */
export const OPTIMIZER_FILE = "optimizer.safetensors";
/** The trainer state file. */
export const STATE_FILE = "trainer_state.json";

function splitPath(path: string): { parent: string; base: string } {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return { parent: slash < 0 ? "." : trimmed.slice(0, slash) || "/", base: trimmed.slice(slash + 1) };
}

/**
 * Writes a folder atomically: `fill` writes into a fresh hidden folder beside
 * `dir`, which then replaces `dir` (an existing `dir` is moved aside first
 * and removed after). When `fill` throws, the hidden folder is removed and
 * `dir` is untouched.
 *
 * @example
 * ```ts
 * import { writeDirAtomic } from "./checkpoint.ts";
 * const root = await Deno.makeTempDir();
 * await writeDirAtomic(`${root}/best`, (tmp) => Deno.writeTextFile(`${tmp}/a.txt`, "1"));
 * await Deno.readTextFile(`${root}/best/a.txt`); // "1"
 * ```
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const { parent, base } = splitPath(dir);
  const tag = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = `${parent}/.${base}.tmp-${tag}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  const old = `${parent}/.${base}.old-${tag}`;
  const hadOld = await Deno.rename(dir, old).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  });
  try {
    await Deno.rename(tmp, dir);
  } catch (e) {
    if (hadOld) await Deno.rename(old, dir).catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`cannot move the new ${base} into place: ${(e as Error).message}`, { cause: e });
  }
  if (hadOld) await Deno.remove(old, { recursive: true });
}

/**
 * Saves a checkpoint into `dir` atomically (see {@link writeDirAtomic}).
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = `${await Deno.makeTempDir()}/checkpoint-1`;
 * const adapter = {
 *   config: { r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ["q_proj"], useRslora: false, baseModelNameOrPath: null },
 *   modules: [{ module: "model.layers.0.self_attn.q_proj", r: 1, inFeatures: 1, outFeatures: 1, a: new Float32Array([1]), b: new Float32Array([2]) }],
 * };
 * const state = {
 *   global_step: 1, epoch: 1, max_steps: 1, num_train_epochs: 1, seed: 0, data_order_sha256: "", metric_for_best_model: "eval_accuracy",
 *   best_metric: null, best_global_step: null, trainable_parameters: 2,
 * };
 * await saveCheckpoint(dir, { adapter, expAvg: new Float32Array(2), expAvgSq: new Float32Array(2), state });
 * (await loadCheckpoint(dir)).state.global_step; // 1
 * ```
 */
export async function saveCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const { adapter, expAvg, expAvgSq, state } = checkpoint;
  if (expAvg.length !== state.trainable_parameters || expAvgSq.length !== state.trainable_parameters) {
    throw new RangeError(
      `checkpoint: ${expAvg.length} and ${expAvgSq.length} moments for ${state.trainable_parameters} parameters`,
    );
  }
  await writeDirAtomic(dir, async (tmp) => {
    await writePeftAdapter(tmp, adapter);
    await writeSafetensors(`${tmp}/${OPTIMIZER_FILE}`, {
      exp_avg: { dtype: "F32", shape: [expAvg.length], data: expAvg },
      exp_avg_sq: { dtype: "F32", shape: [expAvgSq.length], data: expAvgSq },
    }, { format: "pt" });
    await writeFileAtomic(`${tmp}/${STATE_FILE}`, JSON.stringify(state, null, 2) + "\n");
  });
}

/**
 * Reads a checkpoint saved by {@link saveCheckpoint}.
 *
 * @example
 * ```ts ignore
 * import { loadCheckpoint } from "./checkpoint.ts";
 * const { state } = await loadCheckpoint("runs/arxiv5/checkpoint-500");
 * ```
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  let state: TrainerState;
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/${STATE_FILE}`));
  } catch (e) {
    throw new Error(`${dir} is not a lorac checkpoint: cannot read ${STATE_FILE}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const adapter = await readPeftAdapter(dir);
  using file = await SafetensorsFile.open(`${dir}/${OPTIMIZER_FILE}`);
  const expAvg = await file.readFloat32("exp_avg");
  const expAvgSq = await file.readFloat32("exp_avg_sq");
  if (expAvg.length !== state.trainable_parameters || expAvgSq.length !== state.trainable_parameters) {
    throw new RangeError(`${dir}/${OPTIMIZER_FILE}: moments do not match ${state.trainable_parameters} parameters`);
  }
  return { adapter, expAvg, expAvgSq, state };
}

/**
 * The checkpoint folder of `outputDir` with the highest step, or null.
 *
 * @example
 * ```ts
 * import { latestCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * for (const s of [5, 40, 12]) await Deno.mkdir(`${dir}/checkpoint-${s}`);
 * await latestCheckpoint(dir); // `${dir}/checkpoint-40`
 * ```
 */
export async function latestCheckpoint(outputDir: string): Promise<string | null> {
  let best = -1;
  try {
    for await (const entry of Deno.readDir(outputDir)) {
      const m = entry.isDirectory ? /^checkpoint-(\d+)$/.exec(entry.name) : null;
      if (m && Number(m[1]) > best) best = Number(m[1]);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return best < 0 ? null : `${outputDir}/checkpoint-${best}`;
}
