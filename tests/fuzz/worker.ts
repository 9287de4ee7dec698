/**
 * The fuzz worker: runs a range of cases of one target and reports their
 * outcomes. It lives in a Worker so the runner can stop a case that hangs:
 * before each case it writes the case's index into shared memory, which the
 * runner watches. See runner.ts for the protocol.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { Rng } from "../reference/random.ts";
import { type CasePlan, seedOfCase } from "./case_seed.ts";
import { judge, MAX_CASE_BYTES, type Verdict } from "./oracle.ts";
import type { FuzzTarget } from "./targets.ts";

/** A request from the runner: run cases [from, to) of a target. */
export interface WorkerRequest extends CasePlan {
  module: string;
  target: string;
  from: number;
  to: number;
  deadline: number;
  /** Int32Array view: [index of the case now running, cases done, this worker's thread id]. */
  progress: SharedArrayBuffer;
  /** The running case's input (u32 length, then the bytes), so a case that hangs can still be kept. */
  stash: SharedArrayBuffer;
  /** Keep the input bytes of at most this many failures. */
  keepInputs: number;
}

/** One failed case. */
export interface Failure {
  /** The case's index in the run. */
  index: number;
  /** The case's own seed (replays it), or -1 for a replayed input. */
  seed: number;
  /** What went wrong, one line. */
  what: string;
  /** The input, when kept. */
  input?: Uint8Array;
}

/** What a worker reports for its range (in batches). */
export interface WorkerResult {
  /** Cases run. */
  cases: number;
  /** Cases accepted. */
  ok: number;
  /** Refusals by error class. */
  refused: Record<string, number>;
  /** Failures (the first few of each kind). */
  failures: Failure[];
  /** Failures in all. */
  failureCount: number;
  /** The slowest case's time and index. */
  maxCaseMs: number;
  /** Index of the slowest case. */
  maxCaseIndex: number;
}

const loaded = new Map<string, { target: FuzzTarget; corpus: unknown }>();

async function load(module: string, name: string): Promise<{ target: FuzzTarget; corpus: unknown }> {
  const key = `${module}#${name}`;
  let entry = loaded.get(key);
  if (!entry) {
    const targets = (await import(module)).TARGETS as Record<string, FuzzTarget>;
    const target = targets[name];
    if (!target) throw new Error(`no fuzz target "${name}" in ${module}`);
    entry = { target, corpus: await target.seeds() };
    loaded.set(key, entry);
  }
  return entry;
}

/** Bytes this isolate holds now: its heap and its ArrayBuffers. */
function allocated(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

/** Copies `input` into the stash (an empty stash when it does not fit). */
function stashInput(stash: SharedArrayBuffer, input: Uint8Array): void {
  const fits = input.length + 4 <= stash.byteLength;
  new DataView(stash).setUint32(0, fits ? input.length : 0xffffffff, true);
  if (fits) new Uint8Array(stash, 4, input.length).set(input);
}

/** This thread's id on Linux (the runner reads its CPU time), else 0. */
function threadId(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/stat").split(" ")[0]) || 0;
  } catch {
    return 0;
  }
}

/** Collapses numbers so failures that differ only in them count as one kind. */
function kindOf(what: string): string {
  return what.replace(/\d+/g, "#").slice(0, 120);
}

function emptyResult(): WorkerResult {
  return { cases: 0, ok: 0, refused: {}, failures: [], failureCount: 0, maxCaseMs: 0, maxCaseIndex: -1 };
}

/** Runs the cases, posting what happened in batches ("delta", with the next index) and "done" at the end. */
async function run(req: WorkerRequest): Promise<void> {
  const progress = new Int32Array(req.progress);
  Atomics.store(progress, 2, threadId());
  const { target, corpus } = await load(req.module, req.target);
  const perKind = new Map<string, number>();
  let kept = 0;
  let delta = emptyResult();
  let lastPost = Date.now();
  for (let i = req.from; i < req.to && Date.now() < req.deadline; i++) {
    Atomics.store(progress, 0, i);
    const seed = seedOfCase(req, i);
    let input: Uint8Array;
    try {
      input = seed < 0 ? req.inputs![i] : target.mutate(new Rng(seed), corpus);
    } catch (e) {
      // A fault of the harness, not of a parser; reported so it gets fixed.
      delta.cases++;
      delta.failureCount++;
      delta.failures.push({ index: i, seed, what: `mutator: ${String((e as Error)?.stack ?? e).slice(0, 300)}` });
      continue;
    }
    stashInput(req.stash, input);
    const before = allocated();
    const start = performance.now();
    let thrown: unknown = undefined;
    try {
      await target.run(input);
    } catch (e) {
      thrown = e ?? new Error(`threw ${e}`);
    }
    const ms = performance.now() - start;
    if (ms > delta.maxCaseMs) delta.maxCaseMs = ms, delta.maxCaseIndex = i;
    const grown = allocated() - before;
    const verdict: Verdict = grown > MAX_CASE_BYTES
      ? { kind: "failure", what: `memory: ${grown >> 20} MB allocated for an input of ${input.length} bytes` }
      : judge(thrown, target.errors, target.paths);
    delta.cases++;
    if (verdict.kind === "ok") delta.ok++;
    else if (verdict.kind === "refused") delta.refused[verdict.cls] = (delta.refused[verdict.cls] ?? 0) + 1;
    else {
      delta.failureCount++;
      const kind = kindOf(verdict.what);
      const seen = perKind.get(kind) ?? 0;
      perKind.set(kind, seen + 1);
      if (seen < 3) {
        const keep = kept < req.keepInputs && input.length <= 1 << 20;
        if (keep) kept++;
        delta.failures.push({ index: i, seed, what: verdict.what, ...(keep ? { input } : {}) });
      }
    }
    Atomics.store(progress, 1, Atomics.load(progress, 1) + 1);
    // Batches keep the counts exact when a later case hangs and the worker is stopped.
    if (delta.failureCount > 0 || Date.now() - lastPost > 200) {
      self.postMessage({ type: "delta", result: delta, next: i + 1 });
      delta = emptyResult();
      lastPost = Date.now();
    }
  }
  self.postMessage({ type: "delta", result: delta, next: -1 });
  self.postMessage({ type: "done" });
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => run(event.data);
