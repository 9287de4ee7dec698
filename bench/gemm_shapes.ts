/**
 * The GEMM shapes the CPU kernel benchmarks run: every linear layer of
 * SmolLM2-135M and Llama-3.2-1B (W is [out, in]) at a training batch of
 * 2048 tokens.
 *
 * @module
 */

/** One linear layer: Y[M,N] = X[M,K]·Wᵀ with W [N,K]. */
export interface GemmShape {
  /** Model and projection, e.g. "smollm2-135m q/o". */
  name: string;
  /** Tokens. */
  M: number;
  /** Output features (rows of W). */
  N: number;
  /** Input features (columns of W). */
  K: number;
}

/** Tokens per training step in the benchmarks. */
export const TOKENS = 2048;

function layers(model: string, hidden: number, intermediate: number, kvDim: number): GemmShape[] {
  return [
    { name: `${model} q/o`, M: TOKENS, N: hidden, K: hidden },
    { name: `${model} k/v`, M: TOKENS, N: kvDim, K: hidden },
    { name: `${model} gate/up`, M: TOKENS, N: intermediate, K: hidden },
    { name: `${model} down`, M: TOKENS, N: hidden, K: intermediate },
  ];
}

/**
 * SmolLM2-135M: hidden 576, intermediate 1536, 3 kv heads of 64.
 *
 * @example
 * ```ts
 * import { SMOLLM2_135M } from "./gemm_shapes.ts";
 * SMOLLM2_135M.map((s) => `${s.N}x${s.K}`); // ["576x576", "192x576", "1536x576", "576x1536"]
 * ```
 */
export const SMOLLM2_135M: readonly GemmShape[] = layers("smollm2-135m", 576, 1536, 192);

/** Llama-3.2-1B: hidden 2048, intermediate 8192, 8 kv heads of 64. */
export const LLAMA_32_1B: readonly GemmShape[] = layers("llama-3.2-1b", 2048, 8192, 512);

/**
 * FLOPs of one GEMM of this shape (2·M·N·K; the input gradient has the same count).
 *
 * @example
 * ```ts
 * import { gemmFlops } from "./gemm_shapes.ts";
 * gemmFlops({ name: "t", M: 2, N: 3, K: 4 }); // 48
 * ```
 */
export function gemmFlops(s: GemmShape): number {
  return 2 * s.M * s.N * s.K;
}
