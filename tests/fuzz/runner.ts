/**
 * Runs fuzz cases of one target in a Worker, under a per-case time limit:
 * the worker writes the index of the case it is running into shared memory,
 * and when that index has not moved for `caseTimeoutMs` the runner stops the
 * worker, records the case as a hang (with its seed and input), and carries
 * on from the next case in a fresh worker. A worker that dies is recorded the
 * same way. Used by tests/fuzz_test.ts (small, fixed budgets) and
 * bench/fuzz_bench.ts (100,000 cases per parser).
 *
 * @module
 */

import { type CasePlan, planSize, seedOfCase } from "./case_seed.ts";
import type { Failure, WorkerRequest, WorkerResult } from "./worker.ts";

export type { Failure } from "./worker.ts";

/** The default module of targets. */
export const TARGETS_MODULE: string = new URL("./targets.ts", import.meta.url).href;

/** Options of {@link runFuzz}: the cases (see {@link CasePlan}) and how to run them. */
export interface FuzzOptions extends CasePlan {
  /** The target's name in `module`'s TARGETS. */
  target: string;
  /** Stop starting new cases after this many seconds (default: no limit). */
  seconds?: number;
  /** A case that runs longer than this is a hang (default 10 s). */
  caseTimeoutMs?: number;
  /** The module exporting TARGETS (default: targets.ts). */
  module?: string;
  /** Keep the input bytes of at most this many failures (default 20). */
  keepInputs?: number;
  /** Called about once a second with the cases done so far. */
  onProgress?: (done: number) => void;
}

/** The outcome of a run. */
export interface FuzzReport extends WorkerResult {
  /** The target's name. */
  target: string;
  /** Wall-clock seconds. */
  seconds: number;
  /** CPU seconds of the workers (Linux; 0 elsewhere), start-up and seed building included. */
  cpuSeconds: number;
}

/**
 * Milliseconds of CPU the thread `tid` of this process has used, read from
 * /proc (Linux); wall-clock milliseconds where that is not available. A case
 * is timed by its CPU: a loaded machine slows it down, a loop does not end.
 */
function cpuMs(tid: number): number {
  if (tid > 0) {
    try {
      const fields = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`).split(") ")[1].split(" ");
      return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 1/100 s ticks
    } catch {
      // not Linux, or the thread is gone
    }
  }
  return Date.now();
}

/** A worker's message. */
type WorkerMessage = { type: "delta"; result: WorkerResult; next: number } | { type: "done" };

/** Room for the running case's input; a larger input of a case that hangs is not kept. */
const STASH_BYTES = 4 << 20;

/** The input the worker stashed before the case it is stuck in, if it fitted. */
function stashed(stash: SharedArrayBuffer): Uint8Array | undefined {
  const n = new DataView(stash).getUint32(0, true);
  return n + 4 <= stash.byteLength ? new Uint8Array(stash, 4, n).slice() : undefined;
}

/** One request to a fresh worker: resolves with its last message, or with "stuck" and the index it stuck at. */
function ask(
  request: WorkerRequest,
  progress: Int32Array,
  timeoutMs: number,
  onMessage: (m: WorkerMessage) => void,
): Promise<({ done: true } | { stuck: string; index: number }) & { cpuMs: number }> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve) => {
    let last = Atomics.load(progress, 0);
    let since = cpuMs(0);
    let sinceWall = Date.now();
    const finish = (value: { done: true } | { stuck: string; index: number }) => {
      clearInterval(watch);
      const tid = Atomics.load(progress, 2);
      const used = tid > 0 ? cpuMs(tid) : 0;
      worker.terminate();
      resolve({ ...value, cpuMs: used });
    };
    const watch = setInterval(() => {
      const now = Atomics.load(progress, 0);
      const cpu = cpuMs(Atomics.load(progress, 2));
      if (now !== last) {
        last = now;
        since = cpu;
        sinceWall = Date.now();
      } else if ((now >= 0 && cpu - since > timeoutMs) || Date.now() - sinceWall > 60 * timeoutMs) {
        finish({ stuck: `timeout: the case ran longer than ${timeoutMs} ms of CPU`, index: now });
      }
    }, 100);
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      onMessage(e.data);
      if (e.data.type === "done") finish({ done: true });
    };
    worker.onerror = (e) => {
      e.preventDefault();
      finish({ stuck: `crash: ${e.message}`, index: Atomics.load(progress, 0) });
    };
    worker.postMessage(request);
  });
}

function merge(report: FuzzReport, r: WorkerResult): void {
  report.cases += r.cases;
  report.ok += r.ok;
  for (const [cls, n] of Object.entries(r.refused)) report.refused[cls] = (report.refused[cls] ?? 0) + n;
  report.failures.push(...r.failures);
  report.failureCount += r.failureCount;
  if (r.maxCaseMs > report.maxCaseMs) report.maxCaseMs = r.maxCaseMs, report.maxCaseIndex = r.maxCaseIndex;
}

/**
 * Runs the cases of `options` (replayed inputs, replayed seeds, generated
 * cases) of a target and reports the outcomes. Hangs and crashed workers are failures like any
 * other, with the case's seed and, when it can be made again, its input.
 *
 * @example
 * ```ts ignore
 * import { runFuzz } from "./runner.ts";
 * const report = await runFuzz({ target: "csv", cases: 1000, seed: 1 });
 * report.failures; // []
 * ```
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const start = Date.now();
  const module = options.module ?? TARGETS_MODULE;
  const timeoutMs = options.caseTimeoutMs ?? 10_000;
  const deadline = options.seconds === undefined ? Number.MAX_SAFE_INTEGER : start + options.seconds * 1000;
  const report: FuzzReport = {
    target: options.target,
    seconds: 0,
    cpuSeconds: 0,
    cases: 0,
    ok: 0,
    refused: {},
    failures: [],
    failureCount: 0,
    maxCaseMs: 0,
    maxCaseIndex: -1,
  };
  const keep = options.keepInputs ?? 20;
  const ticker = options.onProgress && setInterval(() => options.onProgress!(report.cases), 1000);
  // Ranges of cases still to run; a hang splits its range around the stuck case.
  const todo: [number, number][] = [[0, planSize(options)]];
  try {
    while (todo.length > 0 && Date.now() < deadline) {
      const [from, to] = todo.shift()!;
      const progress = new Int32Array(new SharedArrayBuffer(12));
      const stash = new SharedArrayBuffer(STASH_BYTES);
      progress[0] = -1; // no case started yet: start-up (module loading, seeds) is not timed per case
      let next = from;
      const answer = await ask(
        {
          module,
          target: options.target,
          seed: options.seed,
          cases: options.cases,
          from,
          to,
          deadline,
          progress: progress.buffer as SharedArrayBuffer,
          stash,
          inputs: options.inputs,
          caseSeeds: options.caseSeeds,
          keepInputs: Math.max(0, keep - report.failures.filter((f) => f.input).length),
        },
        progress,
        timeoutMs,
        (m) => {
          if (m.type !== "delta") return;
          merge(report, m.result);
          if (m.next >= 0) next = m.next;
        },
      );
      report.cpuSeconds += answer.cpuMs / 1000;
      if ("done" in answer) continue;
      const index = answer.index;
      report.failureCount++;
      const failure: Failure = { index, seed: index < 0 ? -1 : seedOfCase(options, index), what: answer.stuck };
      report.failures.push(failure);
      if (index < from) break; // the worker died before its first case (a broken corpus): nothing to go on with
      report.cases++;
      failure.input = stashed(stash);
      // The cases finished since the last batch was reported run again (they are deterministic), then the rest.
      todo.unshift(...(next < index ? [[next, index] as [number, number]] : []), [index + 1, to]);
    }
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
  }
  report.seconds = (Date.now() - start) / 1000;
  return report;
}
