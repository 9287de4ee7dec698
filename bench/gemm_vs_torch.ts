/**
 * lorac's CPU NF4 GEMM (forward Y = X·Wᵀ and input gradient dX = dY·W) side
 * by side with torch's bf16 and fp32 matmul on the same shapes, in one run,
 * against this machine's measured FMA peak (bench/peak_flops.cpp).
 *
 *   deno task bench:gemm-vs-torch            SmolLM2-135M + the smaller Llama-3.2-1B layers
 *   deno task bench:gemm-vs-torch --all      every layer of both models
 *   deno task bench:gemm-vs-torch --reps 9   timed calls per cell (median reported; default 5)
 *
 * torch runs in $LORAC_ORACLE_PYTHON, else .oracle-venv/bin/python (made by
 * tests/oracle/setup.sh); without either, the torch columns are skipped.
 *
 * @module
 */

import { buildCpu, buildDir } from "../cuda/build.ts";
import { type Backend, openBackend } from "../lib/backend/backend.ts";
import { type FloatTensor, nf4Gemm, nf4GemmDx } from "../lib/backend/gemm.ts";
import { type Nf4Weight, nf4Weight } from "../lib/backend/nf4.ts";
import { Rng } from "../tests/reference/random.ts";
import { gemmFlops, type GemmShape, LLAMA_32_1B, SMOLLM2_135M } from "./gemm_shapes.ts";

/** The peak of bench/peak_flops.cpp, GFLOP/s on all threads. */
interface Peak {
  isa: string;
  threads: number;
  fp32_gflops: number;
  bf16_gflops: number;
}

type Op = "forward" | "dx";

/** Median of a non-empty list. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Builds (when the source changed) and runs bench/peak_flops.cpp. */
async function measurePeak(): Promise<Peak> {
  const src = new URL("peak_flops.cpp", import.meta.url).pathname;
  const exe = `${buildDir()}/peak_flops`;
  const stale = await Deno.stat(exe).then((e) => e.mtime! < Deno.statSync(src).mtime!, () => true);
  if (stale) {
    await Deno.mkdir(buildDir(), { recursive: true });
    await run(Deno.env.get("CXX") ?? "g++", ["-O2", "-fopenmp", src, "-o", exe]);
  }
  // Best of three: other work on the machine only ever lowers it.
  const runs: Peak[] = [];
  for (let i = 0; i < 3; i++) runs.push(JSON.parse(await run(exe, [])));
  return runs.reduce((a, b) => (b.fp32_gflops > a.fp32_gflops ? b : a));
}

/** The Python with torch, or null. */
async function torchPython(): Promise<string | null> {
  const candidates = [
    Deno.env.get("LORAC_ORACLE_PYTHON"),
    new URL("../.oracle-venv/bin/python", import.meta.url).pathname,
  ];
  for (const python of candidates) {
    if (python && await Deno.stat(python).then(() => true, () => false)) return python;
  }
  return null;
}

/** Seconds per call of torch's matmul, keyed by `${name} ${op} ${dtype}`. */
async function timeTorch(
  python: string,
  shapes: readonly GemmShape[],
  reps: number,
  threads: number,
): Promise<{ version: string; seconds: Map<string, number> }> {
  const script = new URL("torch_gemm.py", import.meta.url).pathname;
  // A cell stops early after 10 s of timed calls: torch's bf16 matmul can be that slow.
  const out = JSON.parse(await run(python, [script, JSON.stringify({ shapes, reps, budget: 10, threads })]));
  const seconds = new Map<string, number>();
  for (const r of out.results) seconds.set(`${r.name} ${r.op} ${r.dtype}`, median(r.seconds));
  return { version: out.torch, seconds };
}

/** A random NF4 weight [N, K]: timing does not depend on the codes. */
function randomNf4(backend: Backend, rng: Rng, N: number, K: number): Nf4Weight {
  const packed = new Uint8Array(N * K / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = rng.int(0, 255);
  const absmax = new Float32Array(N * K / 64).map(() => rng.uniform(0.01, 0.1));
  return nf4Weight(backend.fromHost(packed, [N, K], "nf4"), backend.fromHost(absmax, [absmax.length], "f32"), 64);
}

function randomFloat(backend: Backend, rng: Rng, rows: number, cols: number, dtype: "f32" | "bf16"): FloatTensor {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform(-1, 1);
  const f32 = backend.fromHost(values, [rows, cols], "f32");
  if (dtype === "f32") return f32;
  try {
    return backend.convert(f32, "bf16");
  } finally {
    f32.free();
  }
}

/** Median seconds per call of our NF4 GEMM; input and output in `dtype`. */
function timeOurs(backend: Backend, shape: GemmShape, op: Op, dtype: "f32" | "bf16", reps: number): number {
  const { M, N, K } = shape;
  const rng = new Rng(1);
  using w = randomNf4(backend, rng, N, K);
  using input = randomFloat(backend, rng, M, op === "forward" ? K : N, dtype);
  using output = backend.empty([M, op === "forward" ? N : K], dtype);
  const call = () => op === "forward" ? nf4Gemm(backend, input, w, output) : nf4GemmDx(backend, input, w, output);
  call();
  const seconds: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    call();
    seconds.push((performance.now() - t0) / 1e3);
  }
  return median(seconds);
}

function parseArgs(args: string[]): { all: boolean; reps: number } {
  const at = args.indexOf("--reps");
  const reps = at >= 0 ? Number(args[at + 1]) : 5;
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps needs a positive integer, got ${args[at + 1]}`);
  return { all: args.includes("--all"), reps };
}

const pad = (s: string, n: number) => s.padStart(n);
const gf = (flops: number, s: number | undefined) => s === undefined ? "-" : (flops / s / 1e9).toFixed(1);
const ratio = (ours: number, theirs: number | undefined) =>
  theirs === undefined ? "-" : `${(theirs / ours).toFixed(2)}x`;

async function main(): Promise<void> {
  const { all, reps } = parseArgs(Deno.args);
  await buildCpu();
  using backend = await openBackend("cpu");
  const peak = await measurePeak();
  const shapes = all ? [...SMOLLM2_135M, ...LLAMA_32_1B] : [...SMOLLM2_135M, LLAMA_32_1B[0], LLAMA_32_1B[1]];
  const threads = peak.threads;
  console.log(`device: ${backend.deviceName}`);
  console.log(
    `measured peak (${peak.isa}, ${threads} threads): fp32 FMA ${peak.fp32_gflops.toFixed(1)} GFLOP/s, ` +
      `bf16 ${peak.bf16_gflops.toFixed(1)} GFLOP/s${
        peak.bf16_gflops === peak.fp32_gflops ? " (no bf16 arithmetic)" : ""
      }`,
  );
  console.log(`median of ${reps} calls after a warm-up (torch: fewer past 10 s a cell); GFLOP/s = 2·M·N·K / time\n`);

  // Shape by shape, ours then torch's, so both see the same load on the machine.
  const python = await torchPython();
  const ours = new Map<string, number>();
  const torch = new Map<string, number>();
  let torchVersion = "";
  for (const shape of shapes) {
    for (const op of ["forward", "dx"] as const) {
      for (const dtype of ["f32", "bf16"] as const) {
        ours.set(`${shape.name} ${op} ${dtype}`, timeOurs(backend, shape, op, dtype, reps));
      }
    }
    if (!python) continue;
    const t = await timeTorch(python, [shape], reps, threads);
    torchVersion = t.version;
    for (const [key, seconds] of t.seconds) torch.set(key, seconds);
  }
  console.log(python ? `torch ${torchVersion} (${python})` : "torch: no $LORAC_ORACLE_PYTHON or .oracle-venv: skipped");

  const header = [
    "layer",
    "op",
    "M·N·K",
    "ours f32",
    "ours bf16",
    "torch bf16",
    "torch f32",
    "%peak f32",
    "%peak bf16",
  ];
  const widths = [22, 8, 16, 9, 10, 11, 10, 10, 11, 16, 15];
  console.log(
    [...header, "bf16 vs torch", "f32 vs torch"].map((h, i) => i < 2 ? h.padEnd(widths[i]) : pad(h, widths[i]))
      .join(""),
  );
  for (const shape of shapes) {
    for (const op of ["forward", "dx"] as const) {
      const key = `${shape.name} ${op}`;
      const flops = gemmFlops(shape);
      const [f32, bf16] = [ours.get(`${key} f32`)!, ours.get(`${key} bf16`)!];
      const [tb, tf] = [torch.get(`${key} bf16`), torch.get(`${key} fp32`)];
      const cells = [
        shape.name.padEnd(widths[0]),
        op.padEnd(widths[1]),
        pad(`${shape.M}·${shape.N}·${shape.K}`, widths[2]),
        pad(gf(flops, f32), widths[3]),
        pad(gf(flops, bf16), widths[4]),
        pad(gf(flops, tb), widths[5]),
        pad(gf(flops, tf), widths[6]),
        pad(`${(100 * flops / f32 / 1e9 / peak.fp32_gflops).toFixed(0)}%`, widths[7]),
        pad(`${(100 * flops / bf16 / 1e9 / peak.bf16_gflops).toFixed(0)}%`, widths[8]),
        pad(ratio(bf16, tb), widths[9]),
        pad(ratio(f32, tf), widths[10]),
      ];
      console.log(cells.join(""));
    }
  }
  console.log("\n'vs torch' = torch time / our time (> 1: we are faster); ours bf16 = bf16 X and Y.");
}

if (import.meta.main) await main();
