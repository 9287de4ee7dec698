/**
 * The floating-point work of a LoRA training step on a frozen base, for MFU
 * (model FLOPs utilisation: achieved FLOP/s over the device's peak).
 *
 * Per token, each frozen linear costs 2·params in the forward and 2·params
 * for the input gradient in the backward (no weight gradient: the base is
 * frozen), so 4 × the linear parameters; each adapter 6 × its parameters
 * (forward, dA and dB, dX). Attention adds, per (query, key) pair a causal
 * sequence holds, 4·heads·head_dim in the forward (scores and the weighted
 * sum) and twice that in the backward. The lm_head runs on loss rows only:
 * 4·vocab·hidden each. Recomputation is not counted, as MFU conventionally
 * does not.
 *
 * @module
 */

import type { LlamaConfig } from "../formats/llama_config.ts";
import { LINEAR_NAMES, linearShape } from "../model/weights.ts";

/** What a step's batches hold, as far as the work goes. */
export interface BatchWork {
  /** Tokens run through the model. */
  tokens: number;
  /** Σ n(n+1)/2 over the sequences: the (query, key) pairs causal attention scores. */
  attentionPairs: number;
  /** Rows that carry loss (the lm_head's rows). */
  lossRows: number;
}

/**
 * Parameters of the seven linear projections over all layers.
 *
 * @example
 * ```ts
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { linearParameterCount } from "./flops.ts";
 * linearParameterCount(await readLlamaConfig("../shared/models/stories260K/hf")); // 226560
 * ```
 */
export function linearParameterCount(config: LlamaConfig): number {
  let n = 0;
  for (const name of LINEAR_NAMES) {
    const [out, inp] = linearShape(config, name);
    n += out * inp;
  }
  return n * config.numLayers;
}

/**
 * Causal (query, key) pairs of packed sequences: Σ n(n+1)/2.
 *
 * @example
 * ```ts
 * import { attentionPairs } from "./flops.ts";
 * attentionPairs(new Int32Array([0, 3, 5])); // 6 + 3
 * ```
 */
export function attentionPairs(cuSeqlens: Int32Array): number {
  let pairs = 0;
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const n = cuSeqlens[s + 1] - cuSeqlens[s];
    pairs += (n * (n + 1)) / 2;
  }
  return pairs;
}

/**
 * FLOPs of the forward and backward of `work` with `loraParams` trainable
 * parameters.
 *
 * @example
 * ```ts
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { trainingFlops } from "./flops.ts";
 * const config = await readLlamaConfig("../shared/models/stories260K/hf");
 * trainingFlops(config, 0, { tokens: 1, attentionPairs: 1, lossRows: 1 }); // 4·226560 + 12·5·64 + 4·512·64
 * ```
 */
export function trainingFlops(config: LlamaConfig, loraParams: number, work: BatchWork): number {
  const perToken = 4 * linearParameterCount(config) + 6 * loraParams;
  const attention = 12 * config.numLayers * config.numHeads * config.headDim * work.attentionPairs;
  return work.tokens * perToken + attention + 4 * config.vocabSize * config.hiddenSize * work.lossRows;
}
