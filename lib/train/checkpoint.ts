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
 * beside the target and renamed into place, so a crash, a kill or an error
 * midway leaves the previous checkpoints as they were and no half
 * checkpoint under a checkpoint-<step> name. What a kill can leave behind
 * (hidden `.<name>.tmp-*` / `.<name>.old-*` entries) is invisible to
 * {@link checkpointDirs} and tidied by {@link cleanInterruptedWrites}.
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
  /**
   * Steps skipped for a non-finite loss or gradient (skipNonfiniteSteps): AdamW has taken
   * global_step - skipped_steps steps. Absent (0) in checkpoints of older versions.
   */
  skipped_steps: number;
}

/**
 * A checkpoint folder that cannot be read back: missing, truncated or
 * malformed files. `dir` names the folder; the message is one line.
 */
export class CheckpointError extends Error {
  /** The checkpoint folder. */
  readonly dir: string;

  /** `problem` says what is wrong with `dir`. */
  constructor(dir: string, problem: string, options?: ErrorOptions) {
    super(`checkpoint ${dir} cannot be read: ${problem}`, options);
    this.name = "CheckpointError";
    this.dir = dir;
  }
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
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void> | void): Promise<void> {
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
 *   best_metric: null, best_global_step: null, trainable_parameters: 2, skipped_steps: 0,
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
 * Reads a checkpoint saved by {@link saveCheckpoint}; throws a
 * {@link CheckpointError} when any of its files is missing, truncated or
 * malformed, or holds a non-finite weight or moment.
 *
 * @example
 * ```ts ignore
 * import { loadCheckpoint } from "./checkpoint.ts";
 * const { state } = await loadCheckpoint("runs/arxiv5/checkpoint-500");
 * ```
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
  let state: TrainerState;
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/${STATE_FILE}`));
  } catch (e) {
    throw new CheckpointError(dir, `${STATE_FILE}: ${firstLine(e)}`, { cause: e });
  }
  const count = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  if (
    typeof state !== "object" || state === null || !count(state.global_step) ||
    !count(state.trainable_parameters) || typeof state.data_order_sha256 !== "string"
  ) {
    throw new CheckpointError(dir, `${STATE_FILE} lacks global_step, trainable_parameters or data_order_sha256`);
  }
  state.skipped_steps ??= 0;
  let adapter: PeftAdapter, expAvg: Float32Array, expAvgSq: Float32Array;
  try {
    adapter = await readPeftAdapter(dir);
    using file = await SafetensorsFile.open(`${dir}/${OPTIMIZER_FILE}`);
    expAvg = await file.readFloat32("exp_avg");
    expAvgSq = await file.readFloat32("exp_avg_sq");
  } catch (e) {
    throw new CheckpointError(dir, firstLine(e), { cause: e });
  }
  if (expAvg.length !== state.trainable_parameters || expAvgSq.length !== state.trainable_parameters) {
    throw new CheckpointError(dir, `${OPTIMIZER_FILE}: moments do not match ${state.trainable_parameters} parameters`);
  }
  const finite = (x: Float32Array) => x.every(Number.isFinite);
  if (!adapter.modules.every((m) => finite(m.a) && finite(m.b)) || !finite(expAvg) || !finite(expAvgSq)) {
    throw new CheckpointError(dir, "it holds non-finite weights or moments");
  }
  return { adapter, expAvg, expAvgSq, state };
}

/**
 * The checkpoint-<step> folders of `outputDir`, highest step first (none
 * when the folder does not exist). Hidden leftovers of interrupted saves
 * are not checkpoints.
 *
 * @example
 * ```ts
 * import { checkpointDirs } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * for (const name of ["checkpoint-5", "checkpoint-40", ".checkpoint-41.tmp-7-0a1b2c3d"]) await Deno.mkdir(`${dir}/${name}`);
 * await checkpointDirs(dir); // [`${dir}/checkpoint-40`, `${dir}/checkpoint-5`]
 * ```
 */
export async function checkpointDirs(outputDir: string): Promise<string[]> {
  const steps: number[] = [];
  try {
    for await (const entry of Deno.readDir(outputDir)) {
      const m = entry.isDirectory ? /^checkpoint-(\d+)$/.exec(entry.name) : null;
      if (m) steps.push(Number(m[1]));
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return steps.sort((a, b) => b - a).map((step) => `${outputDir}/checkpoint-${step}`);
}

/** Names of the hidden entries atomic writes make: `.<name>.tmp-<pid>-<8 hex>` and `.<name>.old-<pid>-<8 hex>`. */
const INTERRUPTED = /^\.(.+)\.(tmp|old)-\d+-[0-9a-f]{8}$/;

/**
 * Tidies what killed atomic writes (this module's folders, lib/util's
 * files) left in `dir`: temporary entries are removed, and a `.<name>.old-*`
 * folder, moved aside just before a replacement that never arrived, goes
 * back to `<name>`. Returns the names it removed or restored. Only for a
 * folder no other process is writing into.
 *
 * @example
 * ```ts
 * import { cleanInterruptedWrites } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/.checkpoint-9.tmp-123-0a1b2c3d`);
 * await Deno.mkdir(`${dir}/.best.old-123-0a1b2c3d`);
 * await cleanInterruptedWrites(dir); // [".best.old-123-0a1b2c3d", ".checkpoint-9.tmp-123-0a1b2c3d"]
 * await Deno.stat(`${dir}/best`); // restored
 * ```
 */
export async function cleanInterruptedWrites(dir: string): Promise<string[]> {
  const found: { name: string; target: string; old: boolean }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = INTERRUPTED.exec(entry.name);
      if (m) found.push({ name: entry.name, target: m[1], old: m[2] === "old" });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
  for (const { name, target, old } of found) {
    if (old && !(await exists(`${dir}/${target}`))) await Deno.rename(`${dir}/${name}`, `${dir}/${target}`);
    else await Deno.remove(`${dir}/${name}`, { recursive: true });
  }
  return found.map((f) => f.name).sort();
}
