/**
 * The training log: `metrics.jsonl` in the output folder, one JSON object a
 * line (a "train" record per optimizer step, an "eval" record per
 * evaluation, with transformers' log_history key names), and the same
 * numbers as TensorBoard scalars when asked (`--report_to tensorboard`),
 * under `<output_dir>/runs/<Mon DD_HH-MM-SS>_<host>/` as transformers names
 * its run folders.
 *
 * A resumed run first drops the records after the step it resumes from
 * (and a last line torn by a kill), so the file reads as if the run had
 * never stopped. TensorBoard follows it: the run folder the interrupted run
 * wrote last is rebuilt from the kept records (atomically), and the new
 * steps go on in that folder, so no step shows twice or goes missing there
 * either.
 *
 * @module
 */

import { writeFileAtomic } from "../util/atomic_write.ts";
import { cleanInterruptedWrites, writeDirAtomic } from "./checkpoint.ts";
import { TensorBoardWriter } from "./tensorboard.ts";

/** One optimizer step. */
export interface TrainRecord {
  /** Optimizer steps done (1 for the first). */
  readonly step: number;
  /** Epochs done, fractional (transformers' "epoch"). */
  readonly epoch: number;
  /** Mean loss over the step's completion tokens. */
  readonly loss: number;
  /** The rate the step ran at. */
  readonly learningRate: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  /** Tokens the step ran through the model. */
  readonly tokens: number;
  /** Tokens per second over the step. */
  readonly tokensPerSecond: number;
  /** Model FLOPs utilisation, or null without a peak to compare with. */
  readonly mfu: number | null;
  /** The loss or gradient norm was not finite and the step made no update (skipNonfiniteSteps). */
  readonly skipped?: boolean;
}

/** One evaluation on the validation set. */
export interface EvalRecord {
  /** Optimizer steps done. */
  readonly step: number;
  /** Epochs done, fractional. */
  readonly epoch: number;
  /** Mean loss over the validation completions. */
  readonly loss: number;
  /** Share of validation examples whose greedy answer is the gold label. */
  readonly accuracy: number;
}

/** Options of {@link MetricsLog.open}. */
export interface MetricsLogOptions {
  /** Also write TensorBoard event files. */
  tensorboard: boolean;
  /** Keep only the records up to this step of an existing metrics.jsonl (a resumed run); default: start afresh. */
  resumeStep?: number;
  /** Wall clock in seconds (default Date.now() / 1000). */
  now?: () => number;
}

/** A line of metrics.jsonl as read back. */
export type MetricsRecord = Readonly<Record<string, unknown>> & { readonly type: string; readonly step: number };

/** The TensorBoard tag of each numeric field, per record type (transformers' tags). */
const TAGS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  train: {
    loss: "train/loss",
    learning_rate: "train/learning_rate",
    grad_norm: "train/grad_norm",
    epoch: "train/epoch",
    tokens_per_s: "train/tokens_per_s",
    mfu: "train/mfu",
  },
  eval: { eval_loss: "eval/loss", eval_accuracy: "eval/accuracy", epoch: "train/epoch" },
};

/** A record's TensorBoard scalars (nulls, such as a skipped step's NaN loss read back, are left out). */
function scalarsOf(record: MetricsRecord): Record<string, number> {
  const tags = Object.entries(TAGS[record.type] ?? {}).filter(([key]) => typeof record[key] === "number");
  return Object.fromEntries(tags.map(([key, tag]) => [tag, record[key] as number]));
}

/** The lines of `text` up to `step`, each with its record; a line that does not parse (torn by a kill) is dropped. */
function linesUpTo(text: string, step: number): { line: string; record: MetricsRecord }[] {
  const kept = [];
  for (const line of text.split("\n")) {
    let record: MetricsRecord;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof record === "object" && record !== null && record.step <= step) kept.push({ line: `${line}\n`, record });
  }
  return kept;
}

/** The run folder under `runs` whose event files were written last, or null. */
async function latestRun(runs: string): Promise<string | null> {
  let best: { dir: string; time: number } | null = null;
  try {
    for await (const run of Deno.readDir(runs)) {
      if (!run.isDirectory || run.name.startsWith(".")) continue;
      for await (const file of Deno.readDir(`${runs}/${run.name}`)) {
        const time = (await Deno.stat(`${runs}/${run.name}/${file.name}`)).mtime?.getTime() ?? 0;
        if (best === null || time > best.time) best = { dir: `${runs}/${run.name}`, time };
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return best?.dir ?? null;
}

/** transformers' run folder name: `%b%d_%H-%M-%S_<host>` in local time. */
function runName(date: Date): string {
  const month = date.toLocaleString("en-US", { month: "short" });
  const two = (n: number) => String(n).padStart(2, "0");
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys: keep the placeholder */ }
  return `${month}${two(date.getDate())}_${two(date.getHours())}-${two(date.getMinutes())}-${
    two(date.getSeconds())
  }_${host}`;
}

/**
 * metrics.jsonl plus, optionally, TensorBoard.
 *
 * @example
 * ```ts
 * import { MetricsLog } from "./metrics_log.ts";
 * const dir = await Deno.makeTempDir();
 * {
 *   using log = await MetricsLog.open(dir, { tensorboard: false });
 *   log.train({ step: 1, epoch: 0.5, loss: 2, learningRate: 1e-4, gradNorm: 3, tokens: 512, tokensPerSecond: 900, mfu: null });
 * }
 * JSON.parse(await Deno.readTextFile(`${dir}/metrics.jsonl`)).loss; // 2
 * ```
 */
export class MetricsLog implements Disposable {
  /** The metrics.jsonl path. */
  readonly path: string;
  /** The TensorBoard writer, when on. */
  readonly tensorboard: TensorBoardWriter | null;
  /** The records kept from before a resume, in order (none for a fresh run). */
  readonly kept: readonly MetricsRecord[];
  readonly #file: Deno.FsFile;
  readonly #now: () => number;

  private constructor(
    path: string,
    file: Deno.FsFile,
    tensorboard: TensorBoardWriter | null,
    kept: readonly MetricsRecord[],
    now: () => number,
  ) {
    this.path = path;
    this.#file = file;
    this.tensorboard = tensorboard;
    this.kept = kept;
    this.#now = now;
  }

  /** Opens (or, for a resumed run, trims and reopens) `<outputDir>/metrics.jsonl`. */
  static async open(outputDir: string, options: MetricsLogOptions): Promise<MetricsLog> {
    const path = `${outputDir}/metrics.jsonl`;
    const now = options.now ?? (() => Date.now() / 1000);
    const resumed = options.resumeStep !== undefined;
    await Deno.mkdir(outputDir, { recursive: true });
    const kept = resumed ? linesUpTo(await Deno.readTextFile(path).catch(() => ""), options.resumeStep!) : [];
    // Atomic: a kill while trimming must not lose the records kept.
    await writeFileAtomic(path, kept.map((k) => k.line).join(""));
    const records = kept.map((k) => k.record);
    let tb: TensorBoardWriter | null = null;
    if (options.tensorboard) {
      const runs = `${outputDir}/runs`;
      let logDir = `${runs}/${runName(new Date())}`;
      if (resumed) {
        await cleanInterruptedWrites(runs);
        logDir = await latestRun(runs) ?? logDir;
        await writeDirAtomic(logDir, (tmp) => {
          let clock = typeof records[0]?.time === "number" ? records[0].time as number : now();
          using replay = TensorBoardWriter.create(tmp, () => clock);
          for (const r of records) {
            clock = typeof r.time === "number" ? r.time : clock;
            replay.scalars(r.step, scalarsOf(r));
          }
        });
      }
      tb = TensorBoardWriter.create(logDir, now);
    }
    return new MetricsLog(path, await Deno.open(path, { append: true }), tb, records, now);
  }

  /** Logs one optimizer step. */
  train(r: TrainRecord): void {
    this.#log({
      type: "train",
      step: r.step,
      epoch: r.epoch,
      loss: r.loss,
      learning_rate: r.learningRate,
      grad_norm: r.gradNorm,
      tokens: r.tokens,
      tokens_per_s: r.tokensPerSecond,
      mfu: r.mfu,
      ...(r.skipped ? { skipped: true } : {}),
    });
  }

  /** Logs one evaluation. */
  eval(r: EvalRecord): void {
    this.#log({ type: "eval", step: r.step, epoch: r.epoch, eval_loss: r.loss, eval_accuracy: r.accuracy });
  }

  #log(record: MetricsRecord): void {
    const line = new TextEncoder().encode(JSON.stringify({ ...record, time: this.#now() }) + "\n");
    let done = 0;
    while (done < line.length) done += this.#file.writeSync(line.subarray(done));
    this.tensorboard?.scalars(record.step, scalarsOf(record));
  }

  /** Closes the files. */
  close(): void {
    this.#file.close();
    this.tensorboard?.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
