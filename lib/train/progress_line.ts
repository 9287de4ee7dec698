/**
 * The training progress bar on the console: step, loss, learning rate,
 * tokens/s and ETA. On a terminal it redraws in place (at most every
 * `intervalMs`) and messages (evaluations, checkpoints) print above it; in a
 * log (CI, a pipe) it prints a line every twentieth of the run instead.
 *
 * @module
 */

import { formatDuration, type ProgressSink } from "../ui/progress.ts";

/** What the bar shows after a step. */
export interface StepStatus {
  /** Optimizer steps done. */
  readonly step: number;
  /** The step's loss. */
  readonly loss: number;
  /** The step's learning rate. */
  readonly learningRate: number;
  /** Tokens per second over the run so far. */
  readonly tokensPerSecond: number;
}

/** Options of {@link TrainProgress}. */
export interface TrainProgressOptions {
  /** Where to draw (default Deno.stderr). */
  sink?: ProgressSink;
  /** Milliseconds clock (default performance.now). */
  now?: () => number;
  /** Minimum milliseconds between redraws on a terminal (default 100). */
  intervalMs?: number;
  /** Steps already done when the bar starts (a resumed run): they do not count toward the ETA. */
  startStep?: number;
}

/**
 * A step counter drawn as `step 12/300 |████░░| loss 1.234 lr 2.0e-4 1.2k tok/s ETA 3m05s`.
 *
 * @example
 * ```ts
 * import { TrainProgress } from "./progress_line.ts";
 * const bar = new TrainProgress(10);
 * bar.update({ step: 1, loss: 2.5, learningRate: 2e-4, tokensPerSecond: 1500 });
 * bar.finish();
 * ```
 */
export class TrainProgress {
  readonly #total: number;
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #terminal: boolean;
  readonly #startStep: number;
  readonly #start: number;
  #last: StepStatus | null = null;
  #lastDraw = -Infinity;

  /** A bar over `totalSteps` optimizer steps. */
  constructor(totalSteps: number, options: TrainProgressOptions = {}) {
    this.#total = totalSteps;
    this.#sink = options.sink ?? Deno.stderr;
    this.#now = options.now ?? (() => performance.now());
    this.#interval = options.intervalMs ?? 100;
    this.#terminal = this.#sink.isTerminal();
    this.#startStep = options.startStep ?? 0;
    this.#start = this.#now();
  }

  /** Records a finished step and redraws (terminal) or prints a line every twentieth of the run (log). */
  update(status: StepStatus): void {
    this.#last = status;
    const now = this.#now();
    if (this.#terminal) {
      if (now - this.#lastDraw < this.#interval && status.step < this.#total) return;
      this.#lastDraw = now;
      this.#write(`\r${this.line(now)}\x1b[K`);
    } else if (status.step % Math.max(1, Math.round(this.#total / 20)) === 0 || status.step === this.#total) {
      this.#write(`${this.line(now)}\n`);
    }
  }

  /** Prints a message on its own line (above the bar on a terminal). */
  message(text: string): void {
    this.#write(this.#terminal ? `\r\x1b[K${text}\n${this.#last ? this.line(this.#now()) : ""}` : `${text}\n`);
  }

  /** Ends the bar's line on a terminal. */
  finish(): void {
    if (this.#terminal && this.#last) this.#write(`\r${this.line(this.#now())}\x1b[K\n`);
  }

  /** The bar as drawn at `now` (ms). */
  line(now: number = this.#now()): string {
    const s = this.#last;
    const step = s?.step ?? this.#startStep;
    const frac = this.#total > 0 ? Math.min(1, step / this.#total) : 1;
    const full = Math.round(frac * 20);
    const parts = [`step ${step}/${this.#total}`, `|${"█".repeat(full)}${"░".repeat(20 - full)}|`];
    if (s) {
      parts.push(`loss ${s.loss.toFixed(4)}`, `lr ${s.learningRate.toExponential(2)}`);
      parts.push(`${formatRate(s.tokensPerSecond)} tok/s`);
    }
    const done = step - this.#startStep;
    const seconds = (now - this.#start) / 1000;
    if (done > 0 && step < this.#total) parts.push(`ETA ${formatDuration((seconds / done) * (this.#total - step))}`);
    return parts.join(" ");
  }

  #write(text: string): void {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) {
      const n = this.#sink.writeSync(bytes.subarray(off));
      if (n <= 0) return;
      off += n;
    }
  }
}

/**
 * A rate with k / M suffixes: 950, 1.2k, 3.4M.
 *
 * @example
 * ```ts
 * import { formatRate } from "./progress_line.ts";
 * formatRate(12345); // "12.3k"
 * ```
 */
export function formatRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}
