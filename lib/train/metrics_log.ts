/**
 * The training log: `metrics.jsonl` in the output folder, one JSON object a
 * line (a "train" record per optimizer step, an "eval" record per
 * evaluation, with transformers' log_history key names), and the same
 * numbers as TensorBoard scalars when asked (`--report_to tensorboard`),
 * under `<output_dir>/runs/<Mon DD_HH-MM-SS>_<host>/` as transformers names
 * its run folders.
 *
 * A resumed run first drops the records after the step it resumes from, so
 * the file reads as if the run had never stopped.
 *
 * @module
 */

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
  readonly #file: Deno.FsFile;
  readonly #now: () => number;

  private constructor(path: string, file: Deno.FsFile, tensorboard: TensorBoardWriter | null, now: () => number) {
    this.path = path;
    this.#file = file;
    this.tensorboard = tensorboard;
    this.#now = now;
  }

  /** Opens (or, for a resumed run, trims and reopens) `<outputDir>/metrics.jsonl`. */
  static async open(outputDir: string, options: MetricsLogOptions): Promise<MetricsLog> {
    const path = `${outputDir}/metrics.jsonl`;
    const now = options.now ?? (() => Date.now() / 1000);
    await Deno.mkdir(outputDir, { recursive: true });
    let kept = "";
    if (options.resumeStep !== undefined) {
      const old = await Deno.readTextFile(path).catch(() => "");
      const stop = options.resumeStep;
      kept = old.split("\n").filter((line) => line.trim() !== "" && JSON.parse(line).step <= stop).map((l) => `${l}\n`)
        .join("");
    }
    await Deno.writeTextFile(path, kept);
    const file = await Deno.open(path, { append: true });
    const tb = options.tensorboard ? TensorBoardWriter.create(`${outputDir}/runs/${runName(new Date())}`, now) : null;
    return new MetricsLog(path, file, tb, now);
  }

  /** Logs one optimizer step. */
  train(r: TrainRecord): void {
    this.#append({
      type: "train",
      step: r.step,
      epoch: r.epoch,
      loss: r.loss,
      learning_rate: r.learningRate,
      grad_norm: r.gradNorm,
      tokens: r.tokens,
      tokens_per_s: r.tokensPerSecond,
      mfu: r.mfu,
    });
    this.tensorboard?.scalars(r.step, {
      "train/loss": r.loss,
      "train/learning_rate": r.learningRate,
      "train/grad_norm": r.gradNorm,
      "train/epoch": r.epoch,
      "train/tokens_per_s": r.tokensPerSecond,
      ...(r.mfu === null ? {} : { "train/mfu": r.mfu }),
    });
  }

  /** Logs one evaluation. */
  eval(r: EvalRecord): void {
    this.#append({ type: "eval", step: r.step, epoch: r.epoch, eval_loss: r.loss, eval_accuracy: r.accuracy });
    this.tensorboard?.scalars(r.step, { "eval/loss": r.loss, "eval/accuracy": r.accuracy, "train/epoch": r.epoch });
  }

  #append(record: Record<string, unknown>): void {
    const line = new TextEncoder().encode(JSON.stringify({ ...record, time: this.#now() }) + "\n");
    let done = 0;
    while (done < line.length) done += this.#file.writeSync(line.subarray(done));
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
