/**
 * A one-line progress bar for byte counts (downloads, file reads): percent,
 * bytes, rate and ETA. On a terminal it redraws in place at most every
 * `intervalMs`; elsewhere (CI logs, pipes) it stays silent until `finish`,
 * which prints one summary line.
 *
 * @module
 */

/** Where a progress bar draws: `Deno.stderr` by default. */
export interface ProgressSink {
  /** Writes bytes; same contract as `Deno.stderr.writeSync`. */
  writeSync(p: Uint8Array): number;
  /** Whether the sink is a terminal (redraw in place) or a log (summary line only). */
  isTerminal(): boolean;
}

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Total bytes, when known; without it the bar shows bytes and rate only. */
  total?: number;
  /** Bytes already done before this bar started (a resumed download); they do not count toward the rate. */
  initial?: number;
  /** Where to draw (default `Deno.stderr`). */
  sink?: ProgressSink;
  /** Milliseconds clock (default `performance.now`). */
  now?: () => number;
  /** Minimum milliseconds between two redraws on a terminal (default 100). */
  intervalMs?: number;
  /** Terminal width in columns (default: the console's, or 80). */
  columns?: number;
}

const BAR_CELLS = 20;
const encoder = new TextEncoder();

/**
 * Formats a byte count with decimal units, as download tools do.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./progress.ts";
 * formatBytes(1234567); // "1.2 MB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * Formats seconds as `42s`, `3m05s` or `2h07m`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * formatDuration(185); // "3m05s"
 * ```
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80; // stderr is not a console
  }
}

/**
 * A throttled, TTY-aware progress bar.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const bar = new Progress("model.safetensors", { total: 3_000 });
 * for (let i = 0; i < 3; i++) bar.add(1_000);
 * bar.finish(); // on a terminal the bar ends at 100%; in a log one line: "model.safetensors: 3.0 kB in 0s (...)"
 * ```
 */
export class Progress {
  readonly #label: string;
  readonly #total: number | undefined;
  #initial: number;
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #terminal: boolean;
  readonly #columns: number;
  readonly #start: number;
  #done: number;
  #lastDraw = -Infinity;
  #finished = false;

  /** Starts a bar named `label` (usually a file name). */
  constructor(label: string, options: ProgressOptions = {}) {
    this.#label = label;
    this.#total = options.total;
    this.#initial = options.initial ?? 0;
    this.#done = this.#initial;
    this.#sink = options.sink ?? Deno.stderr;
    this.#now = options.now ?? (() => performance.now());
    this.#interval = options.intervalMs ?? 100;
    this.#terminal = this.#sink.isTerminal();
    this.#columns = options.columns ?? (this.#terminal ? consoleColumns() : 80);
    this.#start = this.#now();
  }

  /** Bytes done so far, including `initial`. */
  get done(): number {
    return this.#done;
  }

  /** Counts `bytes` more as done and redraws if the last redraw is old enough. */
  add(bytes: number): void {
    this.#done += bytes;
    if (!this.#terminal || this.#finished) return;
    const now = this.#now();
    if (now - this.#lastDraw < this.#interval) return;
    this.#lastDraw = now;
    this.#write(`\r${this.line(now)}\x1b[K`);
  }

  /** Moves the count back to `bytes` (a download that had to restart from there). */
  reset(bytes: number): void {
    this.#done = bytes;
    this.#initial = Math.min(this.#initial, bytes);
  }

  /** Ends the bar: the final state on a terminal, or one summary line in a log. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const now = this.#now();
    if (this.#terminal) {
      this.#write(`\r${this.line(now)}\x1b[K\n`);
      return;
    }
    const seconds = (now - this.#start) / 1000;
    const fetched = this.#done - this.#initial;
    const resumed = this.#initial > 0 ? `, resumed at ${formatBytes(this.#initial)}` : "";
    this.#write(
      `${this.#label}: ${formatBytes(fetched)} in ${formatDuration(seconds)} (${this.#rate(now)}${resumed})\n`,
    );
  }

  /** The bar as drawn at time `now` (ms, same clock as `options.now`), fitted to the terminal width. */
  line(now: number = this.#now()): string {
    const total = this.#total;
    const parts: string[] = [];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.#done / total);
      const full = Math.round(frac * BAR_CELLS);
      parts.push(`${Math.floor(frac * 100).toString().padStart(3)}%`);
      parts.push(`|${"█".repeat(full)}${"░".repeat(BAR_CELLS - full)}|`);
      parts.push(`${formatBytes(this.#done)}/${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(this.#done));
    }
    parts.push(this.#rate(now));
    const eta = this.#eta(now);
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    const tail = parts.join(" ");
    // The label gives way first when the terminal is narrow.
    const room = Math.max(8, this.#columns - tail.length - 2);
    const label = this.#label.length > room ? `…${this.#label.slice(-(room - 1))}` : this.#label;
    return `${label} ${tail}`;
  }

  #bytesPerSecond(now: number): number {
    const seconds = (now - this.#start) / 1000;
    return seconds > 0 ? (this.#done - this.#initial) / seconds : 0;
  }

  #rate(now: number): string {
    return `${formatBytes(Math.round(this.#bytesPerSecond(now)))}/s`;
  }

  #eta(now: number): number | undefined {
    const rate = this.#bytesPerSecond(now);
    if (this.#total === undefined || rate <= 0 || this.#done >= this.#total) return undefined;
    return (this.#total - this.#done) / rate;
  }

  #write(text: string): void {
    const bytes = encoder.encode(text);
    let off = 0;
    // writeSync may write fewer bytes than asked; a sink that takes nothing ends the loop.
    while (off < bytes.length) {
      const n = this.#sink.writeSync(bytes.subarray(off));
      if (n <= 0) return;
      off += n;
    }
  }
}
