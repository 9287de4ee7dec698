import assert from "node:assert/strict";
import type { MemoryReport, MemorySample } from "../bench/memory_bench.ts";
import { storiesHfFolder } from "./reference/stories_tokenizer.ts";

// Both runs go in child processes: `deno test --parallel` runs test files side by side in one process, so this
// process's resident set is not this test's. The resident set judged is the anonymous one (RssAnon of
// /proc/<pid>/status: the heaps): VmRSS also counts the pages of the ~100 MiB deno binary, which the kernel
// drops and reloads as the machine's memory pressure comes and goes (a 2,000-step bench run on the busy dev
// machine went from 85 to 50 MiB of VmRSS that way, with the anonymous part flat). Hence Linux only.
const LINUX_ONLY = { ignore: Deno.build.os !== "linux" };
const BENCH = new URL("../bench/memory_bench.ts", import.meta.url).pathname;
const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const MiB = 2 ** 20;

/**
 * Bounds on growth after warm-up. The allocators' own moves on the dev machine: up to +6 MiB of anonymous RSS
 * (one step up, then flat, in a 1,000-step run), +0.3 MiB of JS heap over 1,000 steps, and Deno opening 2
 * more files once in a while. A leak the live count cannot see, of one batch's activations per step (over
 * 1 MiB), would cross them within a few dozen steps.
 */
const RSS_GROWTH = 16 * MiB;
const HEAP_GROWTH = 1 * MiB;
const FILES_GROWTH = 5;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** The samples from the first one at or after `step` on, with that first one. */
function afterWarmUp<S extends { step: number }>(samples: readonly S[], step: number): { warm: S; rest: S[] } {
  const rest = samples.filter((s) => s.step >= step);
  assert.ok(rest.length >= 2, `only ${rest.length} samples at or after step ${step}: the run is too short to judge`);
  return { warm: rest[0], rest };
}

/** Asserts that `value` of no sample after the warm one exceeds the warm one's by `bound` or more. */
function assertBounded<S extends { step: number }>(
  what: string,
  samples: readonly S[],
  warmStep: number,
  value: (s: S) => number,
  bound: number,
  unit: (n: number) => string = mib,
): { warm: number; end: number; max: number } {
  const { warm, rest } = afterWarmUp(samples, warmStep);
  const max = rest.reduce((m, s) => (value(s) > value(m) ? s : m));
  assert.ok(
    value(max) - value(warm) < bound,
    `${what} grew from ${unit(value(warm))} at ${warm.step} to ${unit(value(max))} at ${max.step} ` +
      `(bound +${unit(bound)})`,
  );
  return { warm: value(warm), end: value(rest.at(-1)!), max: value(max) };
}

Deno.test("memory: 240 training steps, inference and 40 model loads free every allocation", LINUX_ONLY, async () => {
  const steps = 240;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", BENCH, "--json", "--steps", `${steps}`, "--sample-every", "10"]
      .concat(["--eval-every", "40", "--cycles", "40", "--tokens", "64", "--threads", "1"]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r: MemoryReport = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(r.gc, "the child runs with a forced GC before each sample");

  // Load / use / dispose, and a load aborted midway: back to the fresh backend's count each time.
  r.cycles.forEach((c) => assert.equal(c.live, r.baseline, `live allocations after cycle ${c.step}`));
  assertBounded("open files over the load cycles", r.cycles, 10, (s) => s.fds, FILES_GROWTH, String);

  // Evaluation and inference free what they allocate; training plans the activations at the first step, and
  // from then on the count must not move.
  assert.equal(r.rounds.length, steps / 40);
  for (const [step, before, after] of r.rounds) {
    assert.equal(after, before, `evaluation and inference at step ${step} left ${after - before} allocations`);
  }
  assert.equal(r.samples.length, steps / 10);
  const steady = r.samples[0].live;
  assert.ok(steady > r.modelLive, `the first step allocates the activations (${r.modelLive} -> ${steady})`);
  r.samples.forEach((s) => assert.equal(s.live, steady, `live allocations after step ${s.step}`));
  assert.equal(r.endLive, r.baseline, "disposing the model and the weights frees everything");

  // Resident set and JS heap after a warm-up of 80 steps (two inference rounds), and over the load cycles
  // after the first 10. Measured on the 2-core dev machine: see the report printed below.
  const anon = (s: MemorySample) => s.rssAnon;
  const rss = assertBounded("anonymous RSS", r.samples, 80, anon, RSS_GROWTH);
  const heap = assertBounded("JS heap", r.samples, 80, (s: MemorySample) => s.heapUsed, HEAP_GROWTH);
  const cycleRss = assertBounded("anonymous RSS over the load cycles", r.cycles, 10, anon, RSS_GROWTH);
  const vm = (s: MemorySample | undefined) => mib(s?.rss ?? NaN);
  console.log(
    `live allocations: baseline ${r.baseline}, model ${r.modelLive}, steady ${steady} over ${steps} steps\n` +
      `anonymous RSS ${mib(rss.warm)} at step 80 -> ${mib(rss.end)} at ${steps} (max ${mib(rss.max)}); ` +
      `VmRSS ${vm(r.samples.find((s) => s.step === 80))} -> ${vm(r.samples.at(-1))}\n` +
      `JS heap ${mib(heap.warm)} -> ${mib(heap.end)}; load cycles: anonymous RSS ${mib(cycleRss.warm)} -> ` +
      `${mib(cycleRss.end)} (max ${mib(cycleRss.max)})`,
  );
});

/** A keyword task in a CSV: `n` rows of a few story words around a keyword that decides the label. */
function csv(n: number): string {
  const keywords: Record<string, string> = { sun: "happy", tree: "big", dog: "friend" };
  const filler = "the girl ran to play with ball park little boy saw bird in garden".split(" ");
  const rows = Array.from({ length: n }, (_, i) => {
    const keyword = Object.keys(keywords)[i % 3];
    const words = Array.from({ length: 2 + (i * 7) % 6 }, (_, j) => filler[(i * 5 + j * 3) % filler.length]);
    words.splice(i % words.length, 0, keyword);
    return `${words.join(" ")},${keywords[keyword]}`;
  });
  return ["text,label", ...rows].join("\n") + "\n";
}

/** VmRSS and RssAnon of a process in bytes, or null once it has exited. */
async function resident(pid: number): Promise<{ vm: number; anon: number } | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]) * 1024;
    const r = { vm: kb("VmRSS"), anon: kb("RssAnon") };
    return Number.isFinite(r.vm + r.anon) ? r : null;
  } catch {
    return null;
  }
}

/** Optimizer steps logged so far in metrics.jsonl (a train record is written after every step). */
async function stepsLogged(path: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.includes('"type":"train"')).length;
  } catch {
    return 0;
  }
}

Deno.test("memory: `lorac train` over ~200 steps holds a flat resident set", LINUX_ONLY, async () => {
  const dir = await Deno.makeTempDir({ prefix: "lorac-memory-" });
  const model = await storiesHfFolder(`${dir}/stories260K`);
  await Deno.writeTextFile(`${dir}/train.csv`, csv(40));
  await Deno.writeTextFile(`${dir}/validation.csv`, csv(6));
  await Deno.writeTextFile(`${dir}/template.txt`, "text: {text}\nlabel:\n");
  const out = `${dir}/out`;
  // 40 short rows in batches of 64 tokens: 20 steps an epoch, 200 in all; an evaluation every 25 steps, one
  // checkpoint at the end, TensorBoard events (the default) every step.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "train", "--base_path", dir, "--text_fields", "text", "--label_column", "label"]
      .concat(["--template", `${dir}/template.txt`, "--base_model_name", model, "--output_dir", out])
      .concat(["--num_train_epochs", "10", "--batch_tokens", "64", "--max_seq_length", "32", "--num_threads", "1"])
      .concat(["--learning_rate", "1e-3", "--eval_steps", "25", "--save_steps", "100000"]),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const samples: { step: number; vm: number; anon: number }[] = [];
  let running = true;
  const done = child.output().finally(() => (running = false));
  while (running) {
    const rss = await resident(child.pid);
    const step = await stepsLogged(`${out}/metrics.jsonl`);
    if (rss !== null) samples.push({ step, ...rss });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const result = await done;
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  const steps = await stepsLogged(`${out}/metrics.jsonl`);
  assert.ok(steps >= 150, `the run trained only ${steps} steps: give it more epochs`);

  // Warm-up: loading, two evaluations, the longest batches. Measured on the 2-core dev machine: see the
  // report printed below.
  const anon = assertBounded("lorac train's anonymous RSS", samples, 50, (s) => s.anon, RSS_GROWTH);
  const warm = samples.find((s) => s.step >= 50)!;
  console.log(
    `lorac train, ${steps} steps, ${samples.length} samples: anonymous RSS ${mib(anon.warm)} at step ${warm.step} ` +
      `-> ${mib(anon.end)} (max ${mib(anon.max)}); VmRSS ${mib(warm.vm)} -> ${mib(samples.at(-1)!.vm)}`,
  );
  await Deno.remove(dir, { recursive: true });
});
