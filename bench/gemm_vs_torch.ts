/**
 * lorac's CPU NF4 GEMM (forward Y = X·Wᵀ and input gradient dX = dY·W), in
 * f32 and with --compute_dtype bf16, side by side with torch's bf16 and fp32
 * matmul on the same shapes, in one run, against this machine's measured FMA
 * peak (bench/peak_flops.cpp).
 *
 *   deno task bench:gemm-vs-torch            SmolLM2-135M + the smaller Llama-3.2-1B layers
 *   deno task bench:gemm-vs-torch --all      every layer of both models
 *   deno task bench:gemm-vs-torch --reps 9   timed calls per cell (median reported; default 5)
 *
 * Two tables: by the wall clock, and per CPU-second (flops / process CPU time
 * x threads), which estimates the idle-machine rate when other work shares the
 * cores. torch runs in $LORAC_ORACLE_PYTHON, else .oracle-venv/bin/python
 * (made by tests/oracle/setup.sh); without either its columns stay empty.
 *
 * @module
 */

import process from "node:process";
import { buildCpu } from "../cuda/build.ts";
import { type Backend, openBackend } from "../lib/backend/backend.ts";
import { type FloatTensor, nf4Gemm, nf4GemmDx } from "../lib/backend/gemm.ts";
import { type Nf4Weight, nf4Weight } from "../lib/backend/nf4.ts";
import { Rng } from "../tests/reference/random.ts";
import { gemmFlops, type GemmShape, LLAMA_32_1B, SMOLLM2_135M } from "./gemm_shapes.ts";
import { maxPeak, measurePeak, run, torchPython } from "./peak.ts";

/** Median seconds per call: wall clock, and CPU time of the whole process. */
interface Timing {
  wall: number;
  cpu: number;
  /** Timed on fewer rows and scaled to M (torch cells too slow to run whole). */
  extrapolated?: boolean;
}

/** Seconds a torch cell may spend on timed calls; slower cells are extrapolated (see torch_gemm.py). */
const TORCH_BUDGET_S = 5;

type Op = "forward" | "dx";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** torch's version, as the benchmark script reports it. */
async function torchVersion(python: string): Promise<string> {
  return (await run(python, ["-c", "import torch; print(torch.__version__)"])).trim();
}

/** torch's timings of one shape, keyed by `${name} ${op} ${dtype}` (dtype bf16 or fp32). */
async function timeTorch(
  python: string,
  shape: GemmShape,
  reps: number,
  threads: number,
): Promise<Map<string, Timing>> {
  const script = new URL("torch_gemm.py", import.meta.url).pathname;
  const config = { shapes: [shape], reps, budget: TORCH_BUDGET_S, threads };
  const out = JSON.parse(await run(python, [script, JSON.stringify(config)]));
  const timings = new Map<string, Timing>();
  for (const r of out.results) {
    timings.set(`${r.name} ${r.op} ${r.dtype}`, {
      wall: median(r.seconds),
      cpu: median(r.cpu_seconds),
      extrapolated: r.extrapolated,
    });
  }
  return timings;
}

/** A random NF4 weight [N, K]: timing does not depend on the codes. */
function randomNf4(backend: Backend, rng: Rng, N: number, K: number): Nf4Weight {
  const packed = new Uint8Array(N * K / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = rng.int(0, 255);
  const absmax = new Float32Array(N * K / 64).map(() => rng.uniform(0.01, 0.1));
  return nf4Weight(backend.fromHost(packed, [N, K], "nf4"), backend.fromHost(absmax, [absmax.length], "f32"), 64);
}

function randomFloat(backend: Backend, rng: Rng, rows: number, cols: number): FloatTensor {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform(-1, 1);
  return backend.fromHost(values, [rows, cols], "f32");
}

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Our NF4 GEMM on f32 input and output, as the model runs it: one warm-up, then `reps` timed calls. */
function timeOurs(backend: Backend, shape: GemmShape, op: Op, reps: number): Timing {
  const { M, N, K } = shape;
  const rng = new Rng(1);
  using w = randomNf4(backend, rng, N, K);
  using input = randomFloat(backend, rng, M, op === "forward" ? K : N);
  using output = backend.empty([M, op === "forward" ? N : K], "f32");
  const call = () => op === "forward" ? nf4Gemm(backend, input, w, output) : nf4GemmDx(backend, input, w, output);
  call();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const [t0, c0] = [performance.now(), cpuSeconds()];
    call();
    wall.push((performance.now() - t0) / 1e3);
    cpu.push(cpuSeconds() - c0);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function parseArgs(args: string[]): { all: boolean; reps: number } {
  const at = args.indexOf("--reps");
  const reps = at >= 0 ? Number(args[at + 1]) : 5;
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps needs a positive integer, got ${args[at + 1]}`);
  return { all: args.includes("--all"), reps };
}

/** Turns a timing of `flops` into GFLOP/s: by the wall clock or per CPU-second. */
type Rate = (flops: number, t: Timing) => number;

const columns: [string, number][] = [
  ["layer", 21],
  ["op", 8],
  ["M·N·K", 16],
  ["ours f32", 10],
  ["ours bf16", 11],
  ["torch bf16", 12],
  ["torch f32", 11],
  ["%peak f32", 11],
  ["%peak bf16", 12],
  ["bf16 vs torch", 15],
  ["f32 vs torch", 14],
];

function printLine(cells: string[]): void {
  console.log(cells.map((c, i) => i < 2 ? c.padEnd(columns[i][1]) : c.padStart(columns[i][1])).join(""));
}

function printHeader(title: string): void {
  console.log(`\n${title}`);
  printLine(columns.map(([name]) => name));
}

/** The forward and dx rows of one shape; `~` marks torch cells extrapolated from fewer rows. */
function printRows(shape: GemmShape, results: Map<string, Timing>, rate: Rate, peak: { f32: number; bf16: number }) {
  for (const op of ["forward", "dx"] as const) {
    const flops = gemmFlops(shape);
    const cell = (who: string) => {
      const t = results.get(`${shape.name} ${op} ${who}`);
      return t === undefined ? undefined : { gflops: rate(flops, t), mark: t.extrapolated ? "~" : "" };
    };
    const [f32, bf16, tb, tf] = [cell("f32"), cell("bf16"), cell("torch bf16"), cell("torch fp32")];
    type Cell = ReturnType<typeof cell>;
    const num = (x: Cell) => x === undefined ? "-" : x.mark + x.gflops.toFixed(1);
    const pct = (x: Cell, p: number) => x === undefined ? "-" : `${(100 * x.gflops / p).toFixed(0)}%`;
    const ratio = (a: Cell, b: Cell) =>
      a === undefined || b === undefined ? "-" : `${b.mark}${(a.gflops / b.gflops).toFixed(2)}x`;
    printLine([
      shape.name,
      op,
      `${shape.M}·${shape.N}·${shape.K}`,
      num(f32),
      num(bf16),
      num(tb),
      num(tf),
      pct(f32, peak.f32),
      pct(bf16, peak.bf16),
      ratio(bf16, tb),
      ratio(f32, tf),
    ]);
  }
}

/** One line per finished shape, so a long run shows where it is. */
function printProgress(shape: GemmShape, results: Map<string, Timing>, at: number, of: number): void {
  const gflops = (who: string, op: Op) => {
    const t = results.get(`${shape.name} ${op} ${who}`);
    return t === undefined ? "-" : (gemmFlops(shape) / t.wall / 1e9).toFixed(1);
  };
  const pair = (who: string) => `${gflops(who, "forward")}/${gflops(who, "dx")}`;
  console.log(
    `[${at}/${of}] ${shape.name}: GFLOP/s forward/dx ours f32 ${pair("f32")}, bf16 ${pair("bf16")}; ` +
      `torch bf16 ${pair("torch bf16")}, fp32 ${pair("torch fp32")}`,
  );
}

async function main(): Promise<void> {
  const { all, reps } = parseArgs(Deno.args);
  await buildCpu();
  using backend = await openBackend("cpu");
  using bf16Backend = await openBackend("cpu", { computeDtype: "bf16" });
  const shapes = all ? [...SMOLLM2_135M, ...LLAMA_32_1B] : [...SMOLLM2_135M, LLAMA_32_1B[0], LLAMA_32_1B[1]];
  const python = await torchPython();
  const loadBefore = Deno.loadavg()[0];
  console.log(`device: ${backend.deviceName}`);
  console.log(
    python
      ? `torch ${await torchVersion(python)} (${python})`
      : "torch: no $LORAC_ORACLE_PYTHON or .oracle-venv: skipped",
  );
  // Measured before and after: clocks and other work on the machine change over a run.
  const peakBefore = await measurePeak();
  const threads = peakBefore.threads;

  // Shape by shape, ours then torch's, so both see the same load on the machine.
  const results = new Map<string, Timing>();
  for (const [i, shape] of shapes.entries()) {
    for (const op of ["forward", "dx"] as const) {
      for (const dtype of ["f32", "bf16"] as const) {
        const ours = timeOurs(dtype === "f32" ? backend : bf16Backend, shape, op, reps);
        results.set(`${shape.name} ${op} ${dtype}`, ours);
      }
    }
    if (python) {
      for (const [key, t] of await timeTorch(python, shape, reps, threads)) {
        results.set(key.replace(/ (bf16|fp32)$/, " torch $1"), t);
      }
    }
    printProgress(shape, results, i + 1, shapes.length);
  }
  const peak = maxPeak(peakBefore, await measurePeak());

  console.log(
    `\nmeasured peak (${peak.isa}, best before/after): fp32 FMA ${peak.fp32_gflops.toFixed(1)} GFLOP/s on ` +
      `${threads} threads, ${peak.fp32_gflops_core.toFixed(1)} per core-second; bf16 ${peak.bf16_gflops.toFixed(1)}` +
      (peak.bf16_gflops_core === peak.fp32_gflops_core ? " (no bf16 arithmetic: the fp32 FMA units)" : ""),
  );
  console.log(
    `median of ${reps} calls after a warm-up (torch: fewer once a cell passes ${TORCH_BUDGET_S} s; ` +
      `~ = timed on fewer rows and scaled to M); GFLOP/s = 2·M·N·K / time; ` +
      `load average ${loadBefore.toFixed(1)} before, ${Deno.loadavg()[0].toFixed(1)} after`,
  );
  console.log(
    "ours bf16 = f32 input and output as in the model, --compute_dtype bf16 (bf16 products on AMX or AVX512-BF16); " +
      "%peak bf16 is of the vdpbf16ps peak, which AMX tiles exceed; " +
      "'vs torch' = our GFLOP/s / torch's (> 1: we are faster)",
  );
  // Each table's %peak uses the peak measured the same way.
  const wallPeak = { f32: peak.fp32_gflops, bf16: peak.bf16_gflops };
  const cpuPeak = { f32: peak.fp32_gflops_core * threads, bf16: peak.bf16_gflops_core * threads };
  printHeader(`by the wall clock (GFLOP/s; %peak of ${wallPeak.f32.toFixed(1)})`);
  for (const shape of shapes) printRows(shape, results, (f, t) => f / t.wall / 1e9, wallPeak);
  printHeader(
    `per CPU-second: flops / (process CPU time / threads), the rate with the cores to ourselves ` +
      `(%peak of ${threads} x ${peak.fp32_gflops_core.toFixed(1)})`,
  );
  for (const shape of shapes) printRows(shape, results, (f, t) => f / (t.cpu / threads) / 1e9, cpuPeak);
}

if (import.meta.main) await main();
