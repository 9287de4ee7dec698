/**
 * Shared by the side-by-side benchmarks: this machine's measured FMA peak
 * (bench/peak_flops.cpp), the Python that has torch, and a command runner.
 *
 * @module
 */

import { buildDir } from "../cuda/build.ts";

/** What bench/peak_flops.cpp prints: GFLOP/s on all threads (wall clock) and per core-second. */
export interface Peak {
  isa: string;
  threads: number;
  fp32_gflops: number;
  fp32_gflops_core: number;
  /** Whether the CPU has bf16 dot-product instructions (else bf16 math runs on the fp32 units, converted). */
  bf16_native: boolean;
  bf16_gflops: number;
  bf16_gflops_core: number;
}

/** Runs a command; its stdout, or an Error with its stderr. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Builds (when the source is newer) and runs bench/peak_flops.cpp; best of three runs. */
export async function measurePeak(): Promise<Peak> {
  const src = new URL("peak_flops.cpp", import.meta.url).pathname;
  const exe = `${buildDir()}/peak_flops`;
  const stale = await Deno.stat(exe).then((e) => e.mtime! < Deno.statSync(src).mtime!, () => true);
  if (stale) {
    await Deno.mkdir(buildDir(), { recursive: true });
    await run(Deno.env.get("CXX") ?? "g++", ["-O2", "-fopenmp", src, "-o", exe]);
  }
  const runs: Peak[] = [];
  for (let i = 0; i < 3; i++) runs.push(JSON.parse(await run(exe, [])));
  // Other work on the machine only ever lowers a measurement.
  const best = (key: keyof Peak) => Math.max(...runs.map((r) => r[key] as number));
  return {
    isa: runs[0].isa,
    threads: runs[0].threads,
    fp32_gflops: best("fp32_gflops"),
    fp32_gflops_core: best("fp32_gflops_core"),
    bf16_native: runs[0].bf16_native,
    bf16_gflops: best("bf16_gflops"),
    bf16_gflops_core: best("bf16_gflops_core"),
  };
}

/** The higher of two peak measurements, field by field. */
export function maxPeak(a: Peak, b: Peak): Peak {
  return {
    ...a,
    fp32_gflops: Math.max(a.fp32_gflops, b.fp32_gflops),
    fp32_gflops_core: Math.max(a.fp32_gflops_core, b.fp32_gflops_core),
    bf16_gflops: Math.max(a.bf16_gflops, b.bf16_gflops),
    bf16_gflops_core: Math.max(a.bf16_gflops_core, b.bf16_gflops_core),
  };
}

/** The Python with torch, or null. */
export async function torchPython(): Promise<string | null> {
  const candidates = [
    Deno.env.get("LORAC_ORACLE_PYTHON"),
    new URL("../.oracle-venv/bin/python", import.meta.url).pathname,
  ];
  for (const python of candidates) {
    if (python && await Deno.stat(python).then(() => true, () => false)) return python;
  }
  return null;
}

/**
 * This process's peak resident set in bytes: VmHWM where /proc has it (Linux),
 * else `fallback` (a peak the caller sampled with Deno.memoryUsage().rss).
 *
 * @example
 * ```ts
 * import { peakRss } from "./peak.ts";
 * const sampled = Deno.memoryUsage().rss;
 * peakRss(sampled) >= sampled; // true
 * ```
 */
export function peakRss(fallback: number): number {
  try {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (hwm) return Math.max(fallback, Number(hwm[1]) * 1024);
  } catch {
    // No /proc (macOS): the sampled RSS is what there is.
  }
  return fallback;
}
