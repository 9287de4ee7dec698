/**
 * Every op of cuda/lorac.h run on the CPU build and on the CUDA build with the
 * same random inputs (odd sizes, poisoned outputs), compared: NF4 codes, scales
 * and conversions bit for bit, fp32 paths to ~1e-5, the bf16 tensor-core GEMMs
 * to 2e-2 (the GPU rounds GEMM inputs to bf16 and accumulates in fp32).
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { dtypeCode, fromBf16, toBf16 } from "../../lib/backend/dtype.ts";
import { AdamWState } from "../../lib/backend/adamw.ts";
import { type FloatTensor, nf4Gemm, nf4GemmDx } from "../../lib/backend/gemm.ts";
import { type LoraAdapter, loraBackward, loraForward } from "../../lib/backend/lora.ts";
import {
  nf4Dequantize,
  nf4DoubleDequantize,
  nf4DoubleQuantize,
  nf4Quantize,
  nf4Weight,
} from "../../lib/backend/nf4.ts";
import { poison, relativeError } from "../../tests/reference/compare.ts";
import type { Rng } from "../../tests/reference/random.ts";

/** One comparison of the two builds. */
export interface Check {
  /** What ran, with its sizes and dtypes. */
  name: string;
  /** Relative error (max |gpu - cpu| / max |cpu|), or the count of differing elements when tol is 0. */
  error: number;
  /** The bound the error must stay within. */
  tol: number;
  /** error <= tol (and nothing threw). */
  pass: boolean;
  /** The exception's message when the op failed. */
  detail?: string;
}

/** Tolerances: fp32 on both sides, and bf16 products or outputs on the GPU. */
export const TOL_F32 = 1e-5;
/** A bf16 output rounds to 8 bits of mantissa; one rounding step apart is ~4e-3. */
export const TOL_BF16_OUT = 1e-2;
/** bf16 tensor-core GEMMs against the CPU's fp32 products. */
export const TOL_TENSOR_CORE = 2e-2;

type Float = "f32" | "bf16";

/** Runs fn and turns an exception into a failed check. */
export function attempt(name: string, tol: number, fn: () => number): Check {
  try {
    const error = fn();
    return { name, error, tol, pass: error <= tol };
  } catch (e) {
    return { name, error: Infinity, tol, pass: false, detail: (e as Error).message };
  }
}

/** Number of elements whose bits differ (so NaN payloads count too). */
export function bitDifferences<T extends Uint8Array | Uint16Array | Float32Array>(a: T, b: T): number {
  if (a.length !== b.length) return Infinity;
  const bits = (t: T) => t instanceof Float32Array ? new Uint32Array(t.buffer, t.byteOffset, t.length) : t;
  const [x, y] = [bits(a), bits(b)];
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

/** The values a dtype can hold: bf16 rounds. */
export function exact(values: Float32Array, dtype: Float): Float32Array {
  return dtype === "f32" ? values : fromBf16(toBf16(values));
}

/** A tensor of `dtype` holding values (rounded to bf16 when dtype is bf16). */
export function upload(backend: Backend, values: Float32Array, shape: number[], dtype: Float): FloatTensor {
  return dtype === "f32" ? backend.fromHost(values, shape, "f32") : backend.fromHost(toBf16(values), shape, "bf16");
}

/** A float tensor's values as f32. */
export function download(t: FloatTensor): Float32Array {
  const host = t.toHost();
  return host instanceof Float32Array ? host : fromBf16(host as Uint16Array);
}

/** Runs the same op on both backends, each on its own copy of the inputs. */
export function onBoth<T>(cpu: Backend, gpu: Backend, fn: (b: Backend) => T): [T, T] {
  return [fn(cpu), fn(gpu)];
}

// ---- conversions and NF4 --------------------------------------------------------

function convertChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const n = 1001;
  const values = rng.normals(n, 3);
  values.set([0, -0, Infinity, -Infinity, 1 + 2 ** -8, 3e-39], 0); // a tie, a subnormal
  return [
    attempt(`convert f32 -> bf16 n=${n}`, 0, () => {
      const [a, b] = onBoth(cpu, gpu, (be) => {
        using src = be.fromHost(values, [n], "f32");
        using dst = be.convert(src, "bf16");
        return dst.toHost();
      });
      return bitDifferences(a, b);
    }),
    attempt(`convert bf16 -> f32 n=${n}`, 0, () => {
      const bits = toBf16(values);
      const [a, b] = onBoth(cpu, gpu, (be) => {
        using src = be.fromHost(bits, [n], "bf16");
        using dst = be.convert(src, "f32");
        return dst.toHost();
      });
      return bitDifferences(a, b);
    }),
  ];
}

function nf4Checks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const cases = [
    { n: 64 * 37 + 30, blocksize: 64, dtype: "f32" }, // a partial last block
    { n: 4097, blocksize: 256, dtype: "bf16" }, // odd n: a pad nibble
    { n: 128 * 50, blocksize: 128, dtype: "f32" },
    { n: 4096 * 3 + 64, blocksize: 4096, dtype: "bf16" },
    { n: 1 << 20, blocksize: 64, dtype: "bf16" },
  ] as const;
  for (const { n, blocksize, dtype } of cases) {
    const w = rng.normals(n, 0.02);
    w.fill(0, blocksize, 2 * blocksize); // an all-zero block: absmax 0
    const name = `nf4 quantize n=${n} blocksize=${blocksize} ${dtype}`;
    let quantized: { packed: Uint8Array; absmax: Float32Array }[] = [];
    checks.push(attempt(`${name}: packed bytes`, 0, () => {
      quantized = onBoth(cpu, gpu, (be) => {
        using t = upload(be, w, [n], dtype);
        using q = nf4Quantize(be, t, blocksize);
        return { packed: q.packed.toHost(), absmax: q.absmax.toHost() };
      });
      return bitDifferences(quantized[0].packed, quantized[1].packed);
    }));
    if (quantized.length === 0) continue;
    checks.push(attempt(`${name}: absmax bits`, 0, () => bitDifferences(quantized[0].absmax, quantized[1].absmax)));
    const { packed, absmax } = quantized[0];
    for (const out of ["f32", "bf16"] as const) {
      checks.push(attempt(`nf4 dequantize n=${n} blocksize=${blocksize} -> ${out}`, 0, () => {
        const [a, b] = onBoth(cpu, gpu, (be) => {
          using q = nf4Weight(be.fromHost(packed, [n], "nf4"), be.fromHost(absmax, [absmax.length], "f32"), blocksize);
          using t = nf4Dequantize(be, q, out);
          return t.toHost();
        });
        return bitDifferences(a, b);
      }));
    }
  }
  // Double quantization: fewer than 8 blocks (torch's scalar sum), partial 256-blocks, many blocks.
  for (const nblocks of [5, 1000, 70001]) {
    const absmax = new Float32Array(nblocks).map(() => rng.uniform(0.001, 0.2));
    const name = `nf4 double quantize nblocks=${nblocks}`;
    let outs: { q: Uint8Array; a2: Float32Array; off: Float32Array }[] = [];
    checks.push(attempt(`${name}: codes`, 0, () => {
      outs = onBoth(cpu, gpu, (be) => {
        using a = be.fromHost(absmax, [nblocks], "f32");
        using dq = nf4DoubleQuantize(be, a);
        return { q: dq.qabsmax.toHost(), a2: dq.absmax2.toHost(), off: dq.offset.toHost() };
      });
      return bitDifferences(outs[0].q, outs[1].q);
    }));
    if (outs.length === 0) continue;
    checks.push(attempt(`${name}: absmax2 bits`, 0, () => bitDifferences(outs[0].a2, outs[1].a2)));
    checks.push(attempt(`${name}: offset bits`, 0, () => bitDifferences(outs[0].off, outs[1].off)));
    const { q, a2, off } = outs[0];
    checks.push(attempt(`nf4 double dequantize nblocks=${nblocks}`, 0, () => {
      const [a, b] = onBoth(cpu, gpu, (be) => {
        const dq = {
          qabsmax: be.fromHost(q, [nblocks], "u8"),
          absmax2: be.fromHost(a2, [a2.length], "f32"),
          offset: be.fromHost(off, [1], "f32"),
          [Symbol.dispose]() {
            this.qabsmax.free();
            this.absmax2.free();
            this.offset.free();
          },
        };
        using _dq = dq;
        using t = nf4DoubleDequantize(be, dq);
        return t.toHost();
      });
      return bitDifferences(a, b);
    }));
  }
  return checks;
}

// ---- GEMMs -----------------------------------------------------------------------

function nf4GemmChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const cases = [
    { M: 77, N: 96, K: 200, blocksize: 64, all: true },
    { M: 33, N: 64, K: 198, blocksize: 64, all: true }, // K % 8 != 0: the element-wise loads
    { M: 130, N: 40, K: 320, blocksize: 128, all: true }, // blocks span rows of W
    { M: 1100, N: 2048, K: 512, blocksize: 64, all: false }, // enough tiles for the 128x128 kernel
  ];
  for (const { M, N, K, blocksize, all } of cases) {
    const w = rng.normals(N * K, 0.05);
    const q = cpuQuantize(cpu, w, [N, K], blocksize);
    for (const direction of ["forward", "dx"] as const) {
      const [inCols, outCols] = direction === "forward" ? [K, N] : [N, K];
      const input = rng.normals(M * inCols);
      const old = rng.normals(M * outCols);
      const combos: [Float, Float, boolean][] = all
        ? [["f32", "f32", false], ["f32", "bf16", true], ["bf16", "f32", true], ["bf16", "bf16", false]]
        : [["bf16", "bf16", false], ["f32", "f32", true]];
      for (const [inDtype, outDtype, accumulate] of combos) {
        const name = `nf4 ${direction} M=${M} N=${N} K=${K} blocksize=${blocksize} ${inDtype}->${outDtype}` +
          (accumulate ? " accumulate" : "");
        checks.push(attempt(name, TOL_TENSOR_CORE, () => {
          const [a, b] = onBoth(cpu, gpu, (be) => {
            using weight = nf4Weight(
              be.fromHost(q.packed, [N, K], "nf4"),
              be.fromHost(q.absmax, [q.absmax.length], "f32"),
              blocksize,
            );
            using x = upload(be, input, [M, inCols], inDtype);
            using y = upload(be, accumulate ? old : poison(M * outCols), [M, outCols], outDtype);
            if (direction === "forward") nf4Gemm(be, x, weight, y, accumulate);
            else nf4GemmDx(be, x, weight, y, accumulate);
            return download(y);
          });
          return relativeError(b, a);
        }));
      }
    }
  }
  return checks;
}

/** Quantizes on the CPU; both builds then read the same codes. */
function cpuQuantize(cpu: Backend, w: Float32Array, shape: number[], blocksize: number) {
  using t = cpu.fromHost(w, shape, "f32");
  using q = nf4Quantize(cpu, t, blocksize);
  return { packed: q.packed.toHost(), absmax: q.absmax.toHost() };
}

/** A [rows, cols] matrix with row stride ld; the padding holds NaN, which must never be read. */
function padded(rng: Rng, rows: number, cols: number, ld: number): Float32Array {
  const out = poison(rows * ld);
  for (let r = 0; r < rows; r++) out.set(rng.normals(cols), r * ld);
  return out;
}

function denseGemmChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const dtypes: [Float, Float, Float][] = [
    ["f32", "f32", "f32"],
    ["bf16", "bf16", "bf16"],
    ["bf16", "bf16", "f32"],
    ["f32", "bf16", "bf16"],
    ["bf16", "f32", "f32"],
  ];
  const shapes = [
    { M: 45, N: 70, K: 93, pads: [0, 5], big: false },
    { M: 300, N: 257, K: 130, pads: [3, 0], big: false },
    { M: 24, N: 40, K: 3001, pads: [1, 0], big: false }, // few tiles, a long reduction: split over k
    { M: 1100, N: 2048, K: 384, pads: [0], big: true },
  ];
  let variant = 0;
  for (const { M, N, K, pads, big } of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [aDtype, bDtype, cDtype] of big ? dtypes.slice(0, 2) : dtypes) {
          const pad = pads[variant % pads.length];
          const [alpha, beta] = variant % 2 === 0 ? [1, 0] : [0.75, -0.5];
          variant++;
          const [aRows, aCols] = transA ? [K, M] : [M, K];
          const [bRows, bCols] = transB ? [N, K] : [K, N];
          const [lda, ldb, ldc] = [aCols + pad, bCols + pad, N + pad];
          const a = padded(rng, aRows, aCols, lda);
          const b = padded(rng, bRows, bCols, ldb);
          const c = beta === 0 ? poison(M * ldc) : rng.normals(M * ldc);
          const tol = aDtype === "f32" && bDtype === "f32"
            ? (cDtype === "f32" ? TOL_F32 : TOL_BF16_OUT)
            : TOL_TENSOR_CORE;
          const name = `gemm M=${M} N=${N} K=${K} transA=${transA} transB=${transB} ld=+${pad} ` +
            `alpha=${alpha} beta=${beta} ${aDtype}·${bDtype}->${cDtype}`;
          checks.push(attempt(name, tol, () => {
            const [x, y] = onBoth(cpu, gpu, (be) => {
              using at = upload(be, a, [a.length], aDtype);
              using bt = upload(be, b, [b.length], bDtype);
              using ct = upload(be, c, [c.length], cDtype);
              be.check(be.lib.symbols.lorac_gemm(
                be.ctx,
                transA ? 1 : 0,
                transB ? 1 : 0,
                M,
                N,
                K,
                alpha,
                at.ptr,
                dtypeCode[aDtype],
                lda,
                bt.ptr,
                dtypeCode[bDtype],
                ldb,
                beta,
                ct.ptr,
                dtypeCode[cDtype],
                ldc,
              ));
              return download(ct);
            });
            return relativeError(body(y, M, N, ldc), body(x, M, N, ldc));
          }));
        }
      }
    }
  }
  return checks;
}

/** The [M, N] body of a matrix stored with row stride ld (NaN padding must stay NaN on both sides). */
function body(c: Float32Array, M: number, N: number, ld: number): Float32Array {
  const out = new Float32Array(M * N);
  for (let i = 0; i < M; i++) out.set(c.subarray(i * ld, i * ld + N), i * N);
  return out;
}

// ---- LoRA ---------------------------------------------------------------------------

interface LoraCase {
  M: number;
  N: number;
  K: number;
  r: number;
  p: number;
  x: Float;
  y: Float;
  dx: Float | null;
}

function loraChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const cases: LoraCase[] = [
    { M: 67, N: 45, K: 83, r: 8, p: 0, x: "f32", y: "f32", dx: "f32" },
    { M: 67, N: 45, K: 83, r: 8, p: 0.1, x: "bf16", y: "bf16", dx: "bf16" },
    { M: 200, N: 130, K: 96, r: 16, p: 0.05, x: "f32", y: "bf16", dx: null },
    { M: 150, N: 300, K: 257, r: 4, p: 0.1, x: "bf16", y: "f32", dx: "f32" },
    { M: 2100, N: 96, K: 160, r: 16, p: 0.1, x: "bf16", y: "bf16", dx: "bf16" }, // dA, dB reduce over 2100 rows
  ];
  for (const c of cases) {
    const X = rng.normals(c.M * c.K);
    const A = rng.normals(c.r * c.K, 1 / Math.sqrt(c.K));
    const B = rng.normals(c.N * c.r, 0.05);
    const Y0 = rng.normals(c.M * c.N);
    const seed = BigInt(rng.int(0, 2 ** 31));
    const scale = 16 / c.r;
    const tag = `M=${c.M} N=${c.N} K=${c.K} r=${c.r} p=${c.p} x=${c.x}`;
    let forward: { xa: Float32Array; y: Float32Array }[] = [];
    checks.push(attempt(`lora forward ${tag} y=${c.y}: XA`, TOL_F32, () => {
      forward = onBoth(cpu, gpu, (be) => {
        using x = upload(be, X, [c.M, c.K], c.x);
        using a = be.fromHost(A, [c.r, c.K], "f32");
        using b = be.fromHost(B, [c.N, c.r], "f32");
        using xa = be.fromHost(poison(c.M * c.r), [c.M, c.r], "f32");
        using y = upload(be, Y0, [c.M, c.N], c.y);
        loraForward(be, x, { A: a, B: b, scale, dropout: c.p, seed }, xa, y);
        return { xa: xa.toHost(), y: download(y) };
      });
      return relativeError(forward[1].xa, forward[0].xa);
    }));
    if (forward.length === 2) {
      const tol = c.y === "f32" ? TOL_F32 : TOL_BF16_OUT;
      checks.push(attempt(`lora forward ${tag} y=${c.y}: Y`, tol, () => relativeError(forward[1].y, forward[0].y)));
    }
    const XA = rng.normals(c.M * c.r);
    const dY = rng.normals(c.M * c.N);
    const [dA0, dB0, dX0] = [rng.normals(c.r * c.K), rng.normals(c.N * c.r), rng.normals(c.M * c.K)];
    let grads: { dA: Float32Array; dB: Float32Array; dX: Float32Array | null }[] = [];
    checks.push(attempt(`lora backward ${tag} dy=${c.y} dx=${c.dx ?? "none"}: dA`, TOL_F32, () => {
      grads = onBoth(cpu, gpu, (be) => {
        using x = upload(be, X, [c.M, c.K], c.x);
        using a = be.fromHost(A, [c.r, c.K], "f32");
        using b = be.fromHost(B, [c.N, c.r], "f32");
        using xa = be.fromHost(XA, [c.M, c.r], "f32");
        using dy = upload(be, dY, [c.M, c.N], c.y);
        using dA = be.fromHost(dA0, [c.r, c.K], "f32");
        using dB = be.fromHost(dB0, [c.N, c.r], "f32");
        using dx = c.dx ? upload(be, dX0, [c.M, c.K], c.dx) : null;
        const lora: LoraAdapter = { A: a, B: b, scale, dropout: c.p, seed };
        loraBackward(be, x, lora, xa, dy, dx ? { dA, dB, dx } : { dA, dB });
        return { dA: dA.toHost(), dB: dB.toHost(), dX: dx ? download(dx) : null };
      });
      return relativeError(grads[1].dA, grads[0].dA);
    }));
    if (grads.length !== 2) continue;
    checks.push(attempt(`lora backward ${tag}: dB`, TOL_F32, () => relativeError(grads[1].dB, grads[0].dB)));
    if (c.dx) {
      const tol = c.dx === "f32" ? TOL_F32 : TOL_BF16_OUT;
      checks.push(attempt(`lora backward ${tag}: dX ${c.dx}`, tol, () => relativeError(grads[1].dX!, grads[0].dX!)));
    }
  }
  return checks;
}

// ---- optimiser ------------------------------------------------------------------------

function adamwChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const n = 100003;
  const params = rng.normals(n, 0.1);
  const steps = [0, 1, 2].map(() => rng.normals(n, 0.01));
  const configs = [
    { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1.0 }, // the norm (~3) is clipped to 1
    { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 0 },
    { lr: 5e-4, weightDecay: 0, maxGradNorm: 10 }, // no clipping needed
  ];
  let results: { norms: number[]; state: Float32Array }[] = [];
  const checks = [attempt(`global norm n=${n} (3 steps)`, TOL_F32, () => {
    results = onBoth(cpu, gpu, (be) => {
      using opt = new AdamWState(be, n);
      be.write(opt.buffer, Float32Array.from({ length: 4 * n }, (_, i) => (i < n ? params[i] : 0)));
      const norms = steps.map((g, i) => {
        be.check(be.lib.symbols.lorac_copy_h2d(be.ctx, opt.section(1), new Uint8Array(g.buffer), BigInt(4 * n)));
        return opt.update(configs[i]);
      });
      return { norms, state: opt.buffer.toHost() };
    });
    return relativeError(results[1].norms, results[0].norms);
  })];
  if (results.length !== 2) return checks;
  const names = ["params", "grads (clipped)", "m", "v"];
  for (let s = 0; s < 4; s++) {
    const [a, b] = results.map((r) => r.state.subarray(s * n, (s + 1) * n));
    checks.push(attempt(`adamw n=${n} after 3 steps: ${names[s]}`, TOL_F32, () => relativeError(b, a)));
  }
  return checks;
}

/**
 * Runs every op comparison; `rng` draws the inputs (its seed is in the report).
 *
 * @example
 * ```ts ignore
 * import { openBackend } from "../../lib/backend/backend.ts";
 * import { Rng } from "../../tests/reference/random.ts";
 * import { checkOps } from "./ops.ts";
 * using cpu = await openBackend("cpu");
 * using gpu = await openBackend("cuda");
 * const failed = checkOps(cpu, gpu, new Rng(1)).filter((c) => !c.pass);
 * ```
 */
export function checkOps(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  return [
    ...convertChecks(cpu, gpu, rng),
    ...nf4Checks(cpu, gpu, rng),
    ...nf4GemmChecks(cpu, gpu, rng),
    ...denseGemmChecks(cpu, gpu, rng),
    ...loraChecks(cpu, gpu, rng),
    ...adamwChecks(cpu, gpu, rng),
  ];
}
