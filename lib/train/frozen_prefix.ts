/**
 * The frozen prefix of a model with LoRA on its top layers only: the
 * residual stream entering the lowest adapted layer, computed once per
 * example and reused by every later forward of that example (every epoch,
 * every evaluation). Nothing below that layer trains and LoRA dropout acts
 * only on adapted layers, so these values never change during a run; the
 * forward then costs only the adapted layers' share of the model.
 *
 * The values are per example, so a batch's are its examples' laid end to
 * end in batch order (batchOf's). Memory: 4 · hidden_size bytes per token
 * (SmolLM2-135M: 2.3 kB; 5,800 arxiv5 abstracts of ~260 tokens: ~3.4 GB).
 *
 * @module
 */

import type { SequenceToPack } from "../model/batch.ts";
import type { LlamaModel } from "../model/llama.ts";
import { batchOf, packSorted } from "./packing.ts";

/** Called after each batch with the number of examples it held. */
export type PrefixProgress = (examples: number) => void;

/**
 * Each example's residual stream entering `layer`.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { LlamaModel } from "../model/llama.ts";
 * import { loadModel } from "../model/load.ts";
 * import { FrozenPrefix } from "./frozen_prefix.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: { r: 4, alpha: 8, layers: [3, 4] } });
 * const examples = [{ tokens: [1, 403, 407, 261], completionStart: 3 }, { tokens: [1, 403, 2], completionStart: 2 }];
 * const prefix = FrozenPrefix.compute(model, examples, 1024);
 * prefix.layer; // 3
 * prefix.of([1, 0]).values.length; // 7 tokens x 64 hidden
 * ```
 */
export class FrozenPrefix {
  /** The layer the values enter (the model's lowest adapted layer). */
  readonly layer: number;
  readonly #hidden: Float32Array[];

  private constructor(layer: number, hidden: Float32Array[]) {
    this.layer = layer;
    this.#hidden = hidden;
  }

  /**
   * Runs the frozen layers of `model` (those below its lowest adapted one)
   * over `examples` in batches of at most `tokenBudget` tokens.
   */
  static compute(
    model: LlamaModel,
    examples: readonly SequenceToPack[],
    tokenBudget: number,
    progress?: PrefixProgress,
  ): FrozenPrefix {
    const layer = model.lora?.firstLayer ?? 0;
    const D = model.config.hiddenSize;
    const hidden: Float32Array[] = new Array(examples.length);
    for (const indices of packSorted(examples.map((e) => e.tokens.length), tokenBudget)) {
      const batch = batchOf(examples, indices);
      const values = model.hiddenBefore(batch, layer);
      indices.forEach((i, k) => {
        hidden[i] = values.slice(batch.cuSeqlens[k] * D, batch.cuSeqlens[k + 1] * D);
      });
      progress?.(indices.length);
    }
    return new FrozenPrefix(layer, hidden);
  }

  /** Bytes held on the host. */
  get bytes(): number {
    return this.#hidden.reduce((sum, h) => sum + h.byteLength, 0);
  }

  /** The values of the examples `indices` end to end, as `LlamaModel.forward`'s `hidden` option takes them. */
  of(indices: readonly number[]): { readonly layer: number; readonly values: Float32Array } {
    const parts = indices.map((i) => this.#hidden[i]);
    const values = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      values.set(p, at);
      at += p.length;
    }
    return { layer: this.layer, values };
  }
}
