/**
 * Matrix products: the NF4 GEMM (Y = X·Wᵀ) with its input gradient
 * (dX = dY·W), and the dense f32 / bf16 GEMM.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { Nf4Weight } from "./nf4.ts";
import type { Tensor } from "./tensor.ts";

/** A 2-D f32 or bf16 tensor. */
export type FloatTensor = Tensor<"f32" | "bf16">;

function dims2(t: Tensor, name: string): [number, number] {
  if (t.shape.length !== 2) throw new RangeError(`${name} must be 2-D, got [${t.shape}]`);
  return [t.shape[0], t.shape[1]];
}

function expectShape(t: Tensor, rows: number, cols: number, name: string): void {
  const [r, c] = dims2(t, name);
  if (r !== rows || c !== cols) throw new RangeError(`${name} must be [${rows}, ${cols}], got [${t.shape}]`);
}

/**
 * Y[M,N] = X[M,K]·Wᵀ (or Y += … with `accumulate`), W an NF4 [N,K] weight.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { nf4Quantize } from "./nf4.ts";
 * import { nf4Gemm } from "./gemm.ts";
 * using backend = await openBackend("cpu");
 * using w = backend.fromHost(new Float32Array(3 * 64).fill(1), [3, 64], "f32");
 * using q = nf4Quantize(backend, w);
 * using x = backend.fromHost(new Float32Array(2 * 64).fill(1), [2, 64], "f32");
 * using y = backend.empty([2, 3], "f32");
 * nf4Gemm(backend, x, q, y);
 * y.toHost()[0]; // 64
 * ```
 */
export function nf4Gemm(backend: Backend, x: FloatTensor, w: Nf4Weight, y: FloatTensor, accumulate = false): void {
  const [M, K] = dims2(x, "X");
  const [N, Kw] = dims2(w.packed, "W");
  if (Kw !== K) throw new RangeError(`X is [${x.shape}] but W is [${w.packed.shape}]: inner sizes differ`);
  expectShape(y, M, N, "Y");
  backend.check(backend.lib.symbols.lorac_nf4_gemm(
    backend.ctx,
    M,
    N,
    K,
    x.ptr,
    dtypeCode[x.dtype],
    w.packed.ptr,
    w.absmax.ptr,
    w.blocksize,
    y.ptr,
    dtypeCode[y.dtype],
    accumulate ? 1 : 0,
  ));
}

/** dX[M,K] = dY[M,N]·W (or dX += … with `accumulate`), W an NF4 [N,K] weight. */
export function nf4GemmDx(backend: Backend, dy: FloatTensor, w: Nf4Weight, dx: FloatTensor, accumulate = false): void {
  const [M, N] = dims2(dy, "dY");
  const [Nw, K] = dims2(w.packed, "W");
  if (Nw !== N) throw new RangeError(`dY is [${dy.shape}] but W is [${w.packed.shape}]: output sizes differ`);
  expectShape(dx, M, K, "dX");
  backend.check(backend.lib.symbols.lorac_nf4_gemm_dx(
    backend.ctx,
    M,
    N,
    K,
    dy.ptr,
    dtypeCode[dy.dtype],
    w.packed.ptr,
    w.absmax.ptr,
    w.blocksize,
    dx.ptr,
    dtypeCode[dx.dtype],
    accumulate ? 1 : 0,
  ));
}

/** Options of {@link gemm}: C = alpha·op(A)·op(B) + beta·C. */
export interface GemmOptions {
  /** A is stored [K, M] (default false: [M, K]). */
  transA?: boolean;
  /** B is stored [N, K] (default false: [K, N]). */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0 (C is overwritten). */
  beta?: number;
}

/**
 * Dense C = alpha·op(A)·op(B) + beta·C in f32 / bf16 with fp32 accumulation.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { gemm } from "./gemm.ts";
 * using backend = await openBackend("cpu");
 * using a = backend.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2], "f32");
 * using c = backend.empty([2, 2], "f32");
 * gemm(backend, a, a, c);
 * c.toHost(); // Float32Array [7, 10, 15, 22]
 * ```
 */
export function gemm(
  backend: Backend,
  a: FloatTensor,
  b: FloatTensor,
  c: FloatTensor,
  options: GemmOptions = {},
): void {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const [ar, ac] = dims2(a, "A");
  const [br, bc] = dims2(b, "B");
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (K !== Kb) throw new RangeError(`gemm: op(A) is [${M}, ${K}] but op(B) is [${Kb}, ${N}]`);
  expectShape(c, M, N, "C");
  backend.check(backend.lib.symbols.lorac_gemm(
    backend.ctx,
    transA ? 1 : 0,
    transB ? 1 : 0,
    M,
    N,
    K,
    options.alpha ?? 1,
    a.ptr,
    dtypeCode[a.dtype],
    ac,
    b.ptr,
    dtypeCode[b.dtype],
    bc,
    options.beta ?? 0,
    c.ptr,
    dtypeCode[c.dtype],
    N,
  ));
}
