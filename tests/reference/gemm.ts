/**
 * Float64 references of the GEMMs: dense C = alpha·op(A)·op(B) + beta·C with
 * BLAS conventions, and the two NF4 GEMMs on a dequantized weight.
 *
 * @module
 */

/** The arguments of {@link gemmRef}: row-major operands with leading dimensions, as lorac_gemm takes them. */
export interface GemmRefArgs {
  /** A is stored [K, M] (op(A) = Aᵀ). */
  transA: boolean;
  /** B is stored [N, K] (op(B) = Bᵀ). */
  transB: boolean;
  /** Rows of C. */
  M: number;
  /** Columns of C. */
  N: number;
  /** The reduction length. */
  K: number;
  /** Scale of the product. */
  alpha: number;
  /** A's elements, row stride lda. */
  a: ArrayLike<number>;
  /** Row stride of A as stored. */
  lda: number;
  /** B's elements, row stride ldb. */
  b: ArrayLike<number>;
  /** Row stride of B as stored. */
  ldb: number;
  /** Scale of C's old value; 0 ignores C (it may hold NaN). */
  beta: number;
  /** C's old elements, row stride ldc. */
  c: ArrayLike<number>;
  /** Row stride of C. */
  ldc: number;
}

/**
 * The [M, N] result of alpha·op(A)·op(B) + beta·C in float64.
 *
 * @example
 * ```ts
 * import { gemmRef } from "./gemm.ts";
 * const a = [1, 2, 3, 4];
 * gemmRef({ transA: false, transB: false, M: 2, N: 2, K: 2, alpha: 1, a, lda: 2, b: a, ldb: 2, beta: 0, c: [], ldc: 2 });
 * // Float64Array [7, 10, 15, 22]
 * ```
 */
export function gemmRef(g: GemmRefArgs): Float64Array {
  const out = new Float64Array(g.M * g.N);
  for (let i = 0; i < g.M; i++) {
    for (let j = 0; j < g.N; j++) {
      let sum = 0;
      for (let k = 0; k < g.K; k++) {
        const a = g.transA ? g.a[k * g.lda + i] : g.a[i * g.lda + k];
        const b = g.transB ? g.b[j * g.ldb + k] : g.b[k * g.ldb + j];
        sum += a * b;
      }
      out[i * g.N + j] = g.alpha * sum + (g.beta === 0 ? 0 : g.beta * g.c[i * g.ldc + j]);
    }
  }
  return out;
}

/**
 * Y[M,N] = X[M,K]·Wᵀ (+ y0 when given), W the dequantized [N,K] weight.
 *
 * @example
 * ```ts
 * import { nf4GemmRef } from "./gemm.ts";
 * nf4GemmRef([1, 2], 1, 1, 2, [3, 4]); // Float64Array [11]
 * ```
 */
export function nf4GemmRef(
  x: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  w: ArrayLike<number>,
  y0?: ArrayLike<number>,
): Float64Array {
  return gemmRef({
    transA: false,
    transB: true,
    M,
    N,
    K,
    alpha: 1,
    a: x,
    lda: K,
    b: w,
    ldb: K,
    beta: y0 ? 1 : 0,
    c: y0 ?? [],
    ldc: N,
  });
}

/**
 * dX[M,K] = dY[M,N]·W (+ dx0 when given), W the dequantized [N,K] weight.
 *
 * @example
 * ```ts
 * import { nf4GemmDxRef } from "./gemm.ts";
 * nf4GemmDxRef([2], 1, 1, 2, [3, 4]); // Float64Array [6, 8]
 * ```
 */
export function nf4GemmDxRef(
  dy: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  w: ArrayLike<number>,
  dx0?: ArrayLike<number>,
): Float64Array {
  return gemmRef({
    transA: false,
    transB: false,
    M,
    N: K,
    K: N,
    alpha: 1,
    a: dy,
    lda: N,
    b: w,
    ldb: K,
    beta: dx0 ? 1 : 0,
    c: dx0 ?? [],
    ldc: K,
  });
}
