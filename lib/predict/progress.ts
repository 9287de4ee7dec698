/**
 * The prediction progress bar: examples done, examples per second and ETA,
 * as `predict 120/400 |██████░░░░░░░░░░░░░░| 30% 3.2 ex/s ETA 1m27s`. On a
 * terminal it redraws in place (at most every `intervalMs`); in a log (CI,
 * a pipe) it prints a line at every tenth of the run instead.
 *
 * @module
 */

import { formatDuration, type ProgressSink } from "../ui/progress.ts";

/** Options of {@link ExampleProgress}. */
export interface ExampleProgressOptions {
  /** Where to draw (default Deno.stderr). */
  sink?: ProgressSink;
  /** Milliseconds clock (default performance.now). */
  now?: () => number;
  /** Minimum milliseconds between redraws on a terminal (default 100). */
  intervalMs?: number;
}

/**
 * A bar over a known number of examples.
 *
 * @example
 * ```ts
 * import { ExampleProgress } from "./progress.ts";
 * const bar = new ExampleProgress("predict", 40);
 * bar.add(16);
 * bar.add(24);
 * bar.finish();
 * ```
 */
export class ExampleProgress {
  readonly #label: string;
  readonly #total: number;
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #terminal: boolean;
  readonly #start: number;
  #done = 0;
  #lastDraw = -Infinity;
  #lastTenth = 0;
  #finished = false;

  /** A bar named `label` over `total` examples. */
  constructor(label: string, total: number, options: ExampleProgressOptions = {}) {
    this.#label = label;
    this.#total = total;
    this.#sink = options.sink ?? Deno.stderr;
    this.#now = options.now ?? (() => performance.now());
    this.#interval = options.intervalMs ?? 100;
    this.#terminal = this.#sink.isTerminal();
    this.#start = this.#now();
  }

  /** Examples done so far. */
  get done(): number {
    return this.#done;
  }

  /** Examples per second since the bar started (0 before any time passed). */
  rate(now: number = this.#now()): number {
    const seconds = (now - this.#start) / 1000;
    return seconds > 0 ? this.#done / seconds : 0;
  }

  /** Counts `n` more examples as done and redraws (terminal) or prints a line at each tenth (log). */
  add(n: number): void {
    this.#done += n;
    if (this.#finished) return;
    const now = this.#now();
    if (this.#terminal) {
      if (now - this.#lastDraw < this.#interval && this.#done < this.#total) return;
      this.#lastDraw = now;
      this.#write(`\r${this.line(now)}\x1b[K`);
      return;
    }
    const tenth = this.#total > 0 ? Math.floor((10 * this.#done) / this.#total) : 10;
    if (tenth > this.#lastTenth) {
      this.#lastTenth = tenth;
      this.#write(`${this.line(now)}\n`);
    }
  }

  /** Ends the bar's line on a terminal. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#terminal) this.#write(`\r${this.line(this.#now())}\x1b[K\n`);
  }

  /** The bar as drawn at `now` (ms, the clock of `options.now`). */
  line(now: number = this.#now()): string {
    const frac = this.#total > 0 ? Math.min(1, this.#done / this.#total) : 1;
    const full = Math.round(frac * 20);
    const rate = this.rate(now);
    const parts = [
      `${this.#label} ${this.#done}/${this.#total}`,
      `|${"█".repeat(full)}${"░".repeat(20 - full)}|`,
      `${Math.floor(frac * 100)}%`,
      `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} ex/s`,
    ];
    if (rate > 0 && this.#done < this.#total) parts.push(`ETA ${formatDuration((this.#total - this.#done) / rate)}`);
    else if (this.#done >= this.#total) parts.push(`in ${formatDuration((now - this.#start) / 1000)}`);
    return parts.join(" ");
  }

  #write(text: string): void {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    // writeSync may write fewer bytes than asked; a sink that takes nothing ends the loop.
    while (off < bytes.length) {
      const n = this.#sink.writeSync(bytes.subarray(off));
      if (n <= 0) return;
      off += n;
    }
  }
}
