/**
 * Float64 reference of LoRA with PEFT's semantics, y += scale·B(A·drop(x)),
 * and its gradients, with cuda/lorac.h's counter-based dropout mask.
 *
 * @module
 */

const MASK64 = (1n << 64n) - 1n;

/**
 * lorac_hash of cuda/lorac.h: a splitmix64 finalizer of seed + golden·(i+1), top 32 bits.
 *
 * @example
 * ```ts
 * import { loraHash } from "./lora.ts";
 * loraHash(0n, 0) === loraHash(0n, 0); // true: a pure function of (seed, index)
 * ```
 */
export function loraHash(seed: bigint, i: number): number {
  let z = (seed + 0x9e3779b97f4a7c15n * BigInt(i + 1)) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  z ^= z >> 31n;
  return Number(z >> 32n);
}

/**
 * The dropout factor of each of `count` elements: 0 where lorac_dropout_keep
 * says drop (hash below p·2³², p as float32), 1/(1-p) elsewhere; all 1 when p = 0.
 *
 * @example
 * ```ts
 * import { dropoutFactors } from "./lora.ts";
 * const f = dropoutFactors(7n, 0.5, 1000);
 * f.filter((x) => x === 0).length; // about 500
 * ```
 */
export function dropoutFactors(seed: bigint, p: number, count: number): Float64Array {
  const out = new Float64Array(count).fill(1);
  if (p === 0) return out;
  const pf = Math.fround(p);
  const threshold = Math.floor(pf * 4294967296);
  for (let i = 0; i < count; i++) out[i] = loraHash(seed, i) >= threshold ? 1 / (1 - pf) : 0;
  return out;
}

/** Sizes and scalars of one LoRA application. */
export interface LoraShape {
  /** Rows of X (tokens). */
  M: number;
  /** Output features (rows of B). */
  N: number;
  /** Input features (columns of A). */
  K: number;
  /** Rank. */
  r: number;
  /** alpha / r (or alpha / sqrt(r)). */
  scale: number;
  /** Dropout probability on X. */
  p: number;
  /** Dropout seed. */
  seed: bigint;
}

/**
 * Forward: xa = drop(X)·Aᵀ [M, r] and delta = scale·xa·Bᵀ [M, N] (what the
 * kernel adds to Y).
 *
 * @example
 * ```ts
 * import { loraForwardRef } from "./lora.ts";
 * const s = { M: 1, N: 3, K: 2, r: 1, scale: 2, p: 0, seed: 0n };
 * loraForwardRef(s, [1, 2], [1, 1], [1, 2, 3]).delta; // Float64Array [6, 12, 18]
 * ```
 */
export function loraForwardRef(
  s: LoraShape,
  X: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
): { xa: Float64Array; delta: Float64Array } {
  const { M, N, K, r, scale } = s;
  const drop = dropoutFactors(s.seed, s.p, M * K);
  const xa = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += drop[m * K + k] * X[m * K + k] * A[j * K + k];
      xa[m * r + j] = acc;
    }
  }
  const delta = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += xa[m * r + j] * B[n * r + j];
      delta[m * N + n] = scale * acc;
    }
  }
  return { xa, delta };
}

/**
 * Backward from dY [M, N]: dA = Gᵀ·drop(X), dB = scale·dYᵀ·xa and
 * dX = drop'(G·A) with G = scale·dY·B (the increments the kernel adds).
 *
 * @example
 * ```ts
 * import { loraBackwardRef, loraForwardRef } from "./lora.ts";
 * const s = { M: 1, N: 1, K: 2, r: 1, scale: 2, p: 0, seed: 0n };
 * const { xa } = loraForwardRef(s, [1, 2], [1, 1], [3]);
 * loraBackwardRef(s, [1, 2], [1, 1], [3], xa, [1]).dA; // Float64Array [6, 12]
 * ```
 */
export function loraBackwardRef(
  s: LoraShape,
  X: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  xa: ArrayLike<number>,
  dY: ArrayLike<number>,
): { dA: Float64Array; dB: Float64Array; dX: Float64Array } {
  const { M, N, K, r, scale } = s;
  const drop = dropoutFactors(s.seed, s.p, M * K);
  const G = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let n = 0; n < N; n++) acc += dY[m * N + n] * B[n * r + j];
      G[m * r + j] = scale * acc;
    }
  }
  const dB = new Float64Array(N * r);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dY[m * N + n] * xa[m * r + j];
      dB[n * r + j] = scale * acc;
    }
  }
  const dA = new Float64Array(r * K);
  const dX = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const x = drop[m * K + k] * X[m * K + k];
      let acc = 0;
      for (let j = 0; j < r; j++) {
        dA[j * K + k] += G[m * r + j] * x;
        acc += G[m * r + j] * A[j * K + k];
      }
      dX[m * K + k] = drop[m * K + k] * acc;
    }
  }
  return { dA, dB, dX };
}
