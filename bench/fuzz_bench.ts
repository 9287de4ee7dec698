/**
 * Fuzzes every input parser lorac has (tests/fuzz/targets.ts): safetensors,
 * GGUF (with its Llama view and its tokenizer), tokenizer.json, CSV (with the
 * examples and labels made from it), PEFT adapters and config.json — the
 * small seeds cut at every interesting offset, then by default 100,000
 * mutated inputs each, every case under a CPU-time limit.
 *
 *   deno task bench:fuzz                                  100,000 cases per parser, a fresh seed
 *   deno task bench:fuzz --cases 20000 --seconds 120 --targets csv,gguf --seed 7 --save
 *
 * Flags: `--cases` per parser; `--seconds`, a time bound per parser (stops
 * starting cases, default none); `--targets`, a comma list (default all);
 * `--seed` (default: from the clock, printed); `--case-timeout` in ms
 * (default 10000; a case past it is a hang); `--save` writes every failing
 * input to tests/fuzz/regressions/<target>-<seed>.bin, where
 * tests/fuzz_test.ts replays it. Per parser it prints cases, accepted
 * inputs, refusals by error class, cases per second, the slowest case, and
 * every kind of failure with its case seed (replay one in-process with
 * `--replay <target>:<seed>`, and keep it as a fixture with `--save`). Exit
 * status 1 when anything failed.
 *
 * @module
 */

import { type FuzzReport, runFuzz } from "../tests/fuzz/runner.ts";
import { TARGETS } from "../tests/fuzz/targets.ts";
import { caseSeed, seedOfCase } from "../tests/fuzz/case_seed.ts";
import { judge } from "../tests/fuzz/oracle.ts";
import { minimize } from "../tests/fuzz/minimize.ts";
import { Rng } from "../tests/reference/random.ts";
import { benchFlags } from "./flags.ts";

const REGRESSIONS = new URL("../tests/fuzz/regressions/", import.meta.url);

const FLAGS = {
  cases: { type: "string", default: "100000" },
  seconds: { type: "string" },
  targets: { type: "string" },
  seed: { type: "string" },
  "case-timeout": { type: "string", default: "10000" },
  save: { type: "boolean", default: false },
  replay: { type: "string" },
} as const;

function hex(seed: number): string {
  return seed.toString(16).padStart(8, "0");
}

/** Replays one case in this process and prints its verdict; with `save`, keeps its input as a regression fixture. */
async function replay(spec: string, save: boolean): Promise<void> {
  const [name, seedText] = spec.split(":");
  const target = TARGETS[name];
  if (!target) throw new Error(`--replay: no target "${name}" (have ${Object.keys(TARGETS).join(", ")})`);
  const seed = seedText.startsWith("0x") ? parseInt(seedText, 16) : Number(seedText);
  const input = target.mutate(new Rng(seed), await target.seeds());
  let thrown: unknown;
  try {
    await target.run(input);
  } catch (e) {
    thrown = e;
  }
  console.log(`${name} seed ${seedText}: ${input.length} bytes`, judge(thrown, target.errors, target.paths));
  if (thrown instanceof Error) console.log(thrown.stack);
  if (save) await keep(name, seed, input);
}

/** Shrinks a failing input (hangs are kept as they are) and saves it as a regression fixture. */
async function keep(target: string, seed: number, input: Uint8Array, shrink = true): Promise<void> {
  const small = shrink ? await minimize(TARGETS[target], input) : input;
  const file = new URL(`${target}-${hex(seed)}.bin`, REGRESSIONS);
  await Deno.writeFile(file, small);
  console.log(
    `    saved ${file.pathname} (${small.length} of ${input.length} bytes); list it in tests/fuzz/regressions.ts`,
  );
}

function row(r: FuzzReport): string {
  const refused = Object.entries(r.refused).map(([cls, n]) => `${cls} ${n}`).join(", ") || "-";
  const perCpu = r.cpuSeconds > 0 ? (r.cases / r.cpuSeconds).toFixed(0) : "-";
  const cells = [r.target, r.cases, r.ok, refused, r.failureCount, (r.cases / r.seconds).toFixed(0), perCpu];
  return `| ${[...cells, r.maxCaseMs.toFixed(0), r.seconds.toFixed(0), r.cpuSeconds.toFixed(0)].join(" | ")} |`;
}

async function main(): Promise<void> {
  const f = benchFlags("bench:fuzz", Deno.args, FLAGS);
  if (f.replay) return await replay(f.replay, f.save);
  const names = f.targets ? f.targets.split(",") : Object.keys(TARGETS);
  for (const n of names) if (!TARGETS[n]) throw new Error(`--targets: no target "${n}"`);
  const seed = f.seed !== undefined ? Number(f.seed) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
  const cases = Number(f.cases);
  const seconds = f.seconds === undefined ? undefined : Number(f.seconds);
  console.log(`fuzz: ${cases} cases per parser, seed ${seed}${seconds ? `, at most ${seconds} s each` : ""}`);
  const reports: FuzzReport[] = [];
  for (const target of names) {
    // The seeds cut at every interesting offset first, then the random cases.
    const sweep = TARGETS[target].sweep(await TARGETS[target].seeds());
    const report = await runFuzz({
      target,
      inputs: sweep,
      cases,
      seed,
      seconds,
      caseTimeoutMs: Number(f["case-timeout"]),
      onProgress: (done) => Deno.stdout.writeSync(new TextEncoder().encode(`\r${target}: ${done} cases`)),
    });
    console.log(`\r${row(report)}`);
    const slowest = report.maxCaseIndex >= 0 ? seedOfCase({ seed, cases, inputs: sweep }, report.maxCaseIndex) : -2;
    if (slowest >= -1) {
      const which = slowest >= 0 ? `seed 0x${hex(slowest)}` : `seed cut ${report.maxCaseIndex}`;
      console.log(`  slowest: case ${report.maxCaseIndex} (${which}), ${report.maxCaseMs.toFixed(0)} ms`);
    }
    reports.push(report);
    for (const failure of report.failures) {
      const seedText = failure.seed >= 0 ? `seed 0x${hex(failure.seed)}` : "replayed input";
      console.log(`  FAIL ${target} case ${failure.index} ${seedText}: ${failure.what}`);
      if (f.save && failure.input) {
        const shrink = !/^(timeout|crash)/.test(failure.what);
        await keep(target, failure.seed >= 0 ? failure.seed : caseSeed(seed, failure.index), failure.input, shrink);
      }
    }
  }
  console.log(`\nseed ${seed}`);
  console.log(
    "| parser | cases | ok | refused (typed errors) | failures | cases/s | cases/CPU-s | slowest case ms | s | CPU s |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of reports) console.log(row(r));
  if (reports.some((r) => r.failureCount > 0)) Deno.exitCode = 1;
}

if (import.meta.main) await main();
