/**
 * `deno bench` of the CPU GEMM kernels: the NF4 GEMM forward and input
 * gradient on every SmolLM2-135M layer at 2048 tokens, NF4 dequantization,
 * and the dense GEMM. Each name carries its GFLOP count: GFLOP/s = GFLOP /
 * (time per iteration in s). For the side-by-side with torch and the
 * machine's peak, run `deno task bench:gemm-vs-torch`.
 *
 *   deno bench -A bench/gemm_bench.ts
 *
 * @module
 */

import { openBackend } from "../lib/backend/backend.ts";
import { dtypeCode } from "../lib/backend/dtype.ts";
import { type FloatTensor, gemm, nf4Gemm, nf4GemmDx } from "../lib/backend/gemm.ts";
import { nf4Weight } from "../lib/backend/nf4.ts";
import { Rng } from "../tests/reference/random.ts";
import { gemmFlops, SMOLLM2_135M, TOKENS } from "./gemm_shapes.ts";

const backend = await openBackend("cpu");
const rng = new Rng(1);
const timing = { n: 10, warmup: 2 };

/** A [rows, cols] tensor of uniform(-1, 1) values. */
function randomTensor(rows: number, cols: number, dtype: "f32" | "bf16"): FloatTensor {
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform(-1, 1);
  const f32 = backend.fromHost(values, [rows, cols], "f32");
  if (dtype === "f32") return f32;
  using _ = f32;
  return backend.convert(f32, "bf16");
}

/** A random NF4 [N, K] weight in blocks of 64: timing does not depend on the codes. */
function randomNf4(N: number, K: number) {
  const packed = new Uint8Array(N * K / 2).map(() => rng.int(0, 255));
  const absmax = new Float32Array(N * K / 64).map(() => rng.uniform(0.01, 0.1));
  return nf4Weight(backend.fromHost(packed, [N, K], "nf4"), backend.fromHost(absmax, [absmax.length], "f32"), 64);
}

const gflop = (flops: number) => `${(flops / 1e9).toFixed(2)} GFLOP`;

for (const shape of SMOLLM2_135M) {
  const { M, N, K } = shape;
  const w = randomNf4(N, K);
  for (const dtype of ["f32", "bf16"] as const) {
    const x = randomTensor(M, K, dtype);
    const y = backend.empty([M, N], dtype);
    const dy = randomTensor(M, N, dtype);
    const dx = backend.empty([M, K], dtype);
    Deno.bench({
      name: `nf4 forward ${shape.name} ${M}x${N}x${K} ${dtype} (${gflop(gemmFlops(shape))})`,
      group: `nf4 forward ${dtype}`,
      ...timing,
      fn: () => nf4Gemm(backend, x, w, y),
    });
    Deno.bench({
      name: `nf4 dx ${shape.name} ${M}x${N}x${K} ${dtype} (${gflop(gemmFlops(shape))})`,
      group: `nf4 dx ${dtype}`,
      ...timing,
      fn: () => nf4GemmDx(backend, dy, w, dx),
    });
  }
}

// Dequantizing the largest SmolLM2 weight: the cost the GEMMs fold into packing.
{
  const [N, K] = [1536, 576];
  const w = randomNf4(N, K);
  for (const dtype of ["f32", "bf16"] as const) {
    const out = backend.empty([N, K], dtype);
    Deno.bench({
      name: `nf4 dequantize ${N}x${K} -> ${dtype}`,
      group: "nf4 dequantize",
      ...timing,
      fn: () =>
        backend.check(backend.lib.symbols.lorac_nf4_dequantize(
          backend.ctx,
          w.packed.ptr,
          w.absmax.ptr,
          BigInt(N * K),
          64,
          out.ptr,
          dtypeCode[dtype],
        )),
    });
  }
}

// Dense GEMM: the square product of the hidden size, and a LoRA-like rank-16 update.
for (const [M, N, K] of [[TOKENS, 576, 576], [TOKENS, 576, 16]]) {
  for (const dtype of ["f32", "bf16"] as const) {
    const a = randomTensor(M, K, dtype);
    const b = randomTensor(N, K, dtype);
    const c = backend.empty([M, N], dtype);
    Deno.bench({
      name: `dense ${M}x${N}x${K} A·Bᵀ ${dtype} (${gflop(2 * M * N * K)})`,
      group: "dense",
      ...timing,
      fn: () => gemm(backend, a, b, c, { transB: true }),
    });
  }
}
