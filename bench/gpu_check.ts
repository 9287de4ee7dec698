/**
 * `deno task gpu-check`: on a machine with an NVIDIA GPU, builds
 * libcudakernels for that GPU, runs every op of cuda/lorac.h on the CPU build
 * and the CUDA build with the same random inputs and compares them, runs one
 * training step on both, and benchmarks the GPU GEMMs. Writes a JSON report.
 *
 *   deno task gpu-check                  everything; the report goes to $OUT/gpu-check.json
 *                                        when $OUT is set, else build/gpu-check.json
 *   deno task gpu-check --out FILE       the report's path
 *   deno task gpu-check --seed N         replay the inputs of an earlier run (its seed is in the report)
 *   deno task gpu-check --arch sm_89     build for this target instead of the detected one
 *   deno task gpu-check --no-bench       comparisons only
 *
 * Exit status: 0 when every comparison passes, 1 when one fails, 2 when there
 * is no usable GPU or the CUDA library cannot be built or opened.
 * docs/GPU.md says how to run it on a GPU machine with no network.
 *
 * @module
 */

import { buildDir } from "../cuda/build.ts";
import { type Backend, openBackend } from "../lib/backend/backend.ts";
import { Rng } from "../tests/reference/random.ts";
import { archFor, cudaLibraryFor, queryGpu } from "./gpu_check/device.ts";
import { type Check, checkOps } from "./gpu_check/ops.ts";
import { benchGemms, type Timing } from "./gpu_check/speed.ts";
import { checkTrainingStep } from "./gpu_check/train.ts";
import { checkTransformerOps } from "./gpu_check/transformer.ts";

interface Options {
  out: string;
  seed: number | undefined;
  arch: string | undefined;
  bench: boolean;
}

function parseArgs(args: string[]): Options {
  const options: Options = {
    out: Deno.env.get("OUT") ? `${Deno.env.get("OUT")}/gpu-check.json` : `${buildDir()}/gpu-check.json`,
    seed: undefined,
    arch: undefined,
    bench: true,
  };
  for (let i = 0; i < args.length; i++) {
    const value = () => {
      if (i + 1 >= args.length) throw new Error(`${args[i]} needs a value`);
      return args[++i];
    };
    if (args[i] === "--out") options.out = value();
    else if (args[i] === "--seed") options.seed = Number(value());
    else if (args[i] === "--arch") options.arch = value();
    else if (args[i] === "--no-bench") options.bench = false;
    else throw new Error(`unknown argument ${args[i]} (see bench/gpu_check.ts for the options)`);
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new Error("--seed needs an integer");
  return options;
}

/** Exits with status 2 and one line saying why gpu-check cannot run here. */
function cannotRun(why: string): never {
  console.error(`gpu-check: ${why}`);
  Deno.exit(2);
}

function printChecks(checks: Check[]): void {
  const failed = checks.filter((c) => !c.pass);
  for (const c of failed) {
    const error = c.tol === 0 ? `${c.error} elements differ` : `error ${c.error.toExponential(2)} > ${c.tol}`;
    console.log(`FAIL ${c.name}: ${c.detail ?? error}`);
  }
  const worst = (pred: (c: Check) => boolean) =>
    Math.max(0, ...checks.filter((c) => c.pass && c.tol > 0 && pred(c)).map((c) => c.error / c.tol));
  console.log(
    `${checks.length - failed.length}/${checks.length} comparisons pass` +
      ` (closest to its bound: ${(100 * worst(() => true)).toFixed(0)}% of the tolerance)`,
  );
}

function printTimings(timings: Timing[]): void {
  console.log(`\n${"shape".padEnd(22)}${"M x N x K".padEnd(20)}${"op".padEnd(14)}${"ms".padStart(9)}  TFLOP/s`);
  for (const t of timings) {
    console.log(
      t.shape.padEnd(22) + `${t.M}x${t.N}x${t.K}`.padEnd(20) + t.op.padEnd(14) + t.ms.toFixed(3).padStart(9) +
        t.tflops.toFixed(1).padStart(9),
    );
  }
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(Deno.args);
  } catch (e) {
    console.error(`gpu-check: ${(e as Error).message}`);
    return 2;
  }
  const gpu = await queryGpu();
  if (typeof gpu === "string") cannotRun(`no usable GPU (${gpu})`);
  const arch = options.arch ?? archFor(gpu.computeCap);
  console.log(`gpu-check: ${gpu.name}, compute capability ${gpu.computeCap}; building libcudakernels for ${arch}`);

  using cpu = await openBackend("cpu");
  let library;
  try {
    library = await cudaLibraryFor(arch);
  } catch (e) {
    cannotRun(`cannot build libcudakernels: ${(e as Error).message}`);
  }
  let cuda: Backend;
  try {
    cuda = await openBackend("cuda");
  } catch (e) {
    cannotRun((e as Error).message);
  }
  using _cuda = cuda;
  console.log(`${cpu.deviceName}\n${cuda.deviceName}\nlibrary: ${library.path} (${library.built})`);

  const rng = new Rng(options.seed);
  console.log(`seed ${rng.seed} (replay with --seed ${rng.seed})`);
  const started = performance.now();
  const checks = [
    ...checkOps(cpu, cuda, rng),
    ...checkTransformerOps(cpu, cuda, rng),
    ...checkTrainingStep(cpu, cuda, rng),
  ];
  printChecks(checks);
  console.log(`comparisons took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const leaked = cuda.liveAllocations();
  if (leaked !== 0) checks.push({ name: "GPU allocations freed", error: leaked, tol: 0, pass: false });

  let timings: Timing[] = [];
  let benchError: string | undefined;
  try {
    if (options.bench) timings = benchGemms(cuda, rng);
  } catch (e) {
    benchError = (e as Error).message;
    console.log(`FAIL benchmarks: ${benchError}`);
  }
  if (timings.length) printTimings(timings);

  const passed = checks.every((c) => c.pass) && benchError === undefined;
  const report = {
    passed,
    seed: rng.seed,
    gpu: { ...gpu, arch, device: cuda.deviceName },
    cpu: cpu.deviceName,
    library,
    checks,
    timings,
    benchError,
    date: new Date().toISOString(),
  };
  const dir = options.out.slice(0, options.out.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  // JSON has no Infinity: a failed op's error is written as null.
  await Deno.writeTextFile(options.out, JSON.stringify(report, (_, v) => (v === Infinity ? null : v), 2) + "\n");
  console.log(`\nreport: ${options.out}\ngpu-check: ${passed ? "PASS" : "FAIL"}`);
  return passed ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
