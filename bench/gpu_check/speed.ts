/**
 * GPU GEMM throughput on the linear layers of SmolLM2-135M and Llama-3.2-1B
 * at 2048 tokens: the NF4 forward Y = X·Wᵀ, its input gradient dX = dY·W, and
 * the dense bf16 GEMM on the same shape for comparison. bf16 activations.
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { toBf16 } from "../../lib/backend/dtype.ts";
import { gemm, nf4Gemm, nf4GemmDx } from "../../lib/backend/gemm.ts";
import { nf4Quantize } from "../../lib/backend/nf4.ts";
import type { Rng } from "../../tests/reference/random.ts";
import { gemmFlops, type GemmShape, LLAMA_32_1B, SMOLLM2_135M } from "../gemm_shapes.ts";

/** One timed op on one shape. */
export interface Timing {
  /** Model and projection. */
  shape: string;
  /** "nf4 forward", "nf4 dx" or "bf16 forward". */
  op: string;
  M: number;
  N: number;
  K: number;
  /** Mean milliseconds per call. */
  ms: number;
  /** 2·M·N·K / time. */
  tflops: number;
}

/** Mean seconds per call of fn: warm up, then enough calls for ~0.2 s. */
function time(backend: Backend, fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  backend.sync();
  let t0 = performance.now();
  for (let i = 0; i < 5; i++) fn();
  backend.sync();
  const guess = (performance.now() - t0) / 5;
  const calls = Math.max(5, Math.min(500, Math.ceil(200 / Math.max(guess, 1e-3))));
  t0 = performance.now();
  for (let i = 0; i < calls; i++) fn();
  backend.sync();
  return (performance.now() - t0) / calls / 1000;
}

/** The shapes gpu-check times: every linear layer of SmolLM2-135M and Llama-3.2-1B at 2048 tokens. */
export const BENCH_SHAPES: readonly GemmShape[] = [...SMOLLM2_135M, ...LLAMA_32_1B];

/**
 * Times the GEMMs of each shape (default {@link BENCH_SHAPES}) on `gpu`.
 *
 * @example
 * ```ts ignore
 * import { openBackend } from "../../lib/backend/backend.ts";
 * import { Rng } from "../../tests/reference/random.ts";
 * import { benchGemms } from "./speed.ts";
 * using gpu = await openBackend("cuda");
 * console.table(benchGemms(gpu, new Rng(1)));
 * ```
 */
export function benchGemms(gpu: Backend, rng: Rng, shapes: readonly GemmShape[] = BENCH_SHAPES): Timing[] {
  const largest = Math.max(...shapes.flatMap((s) => [s.M * s.K, s.M * s.N, s.N * s.K]));
  // One pool of random values; every tensor takes a prefix of it.
  const pool = Float32Array.from({ length: largest }, () => rng.uniform(-1, 1));
  const bf16Pool = toBf16(pool);
  const timings: Timing[] = [];
  for (const s of shapes) {
    const { M, N, K } = s;
    using x = gpu.fromHost(bf16Pool.subarray(0, M * K), [M, K], "bf16");
    using dy = gpu.fromHost(bf16Pool.subarray(0, M * N), [M, N], "bf16");
    using y = gpu.empty([M, N], "bf16");
    using dx = gpu.empty([M, K], "bf16");
    using wf = gpu.fromHost(pool.subarray(0, N * K).map((v) => v * 0.05), [N, K], "f32");
    using w = nf4Quantize(gpu, wf, 64);
    using wb = gpu.convert(wf, "bf16");
    const ops: [string, () => void][] = [
      ["nf4 forward", () => nf4Gemm(gpu, x, w, y)],
      ["nf4 dx", () => nf4GemmDx(gpu, dy, w, dx)],
      ["bf16 forward", () => gemm(gpu, x, wb, y, { transB: true })],
    ];
    for (const [op, fn] of ops) {
      const seconds = time(gpu, fn);
      timings.push({ shape: s.name, op, M, N, K, ms: seconds * 1e3, tflops: gemmFlops(s) / seconds / 1e12 });
    }
  }
  return timings;
}
