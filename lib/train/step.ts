/**
 * One optimizer step of LoRA training: zero the gradients, run forward and
 * backward over each micro-batch (gradient accumulation) with the loss
 * averaged over all completion tokens of the step, then one AdamW update
 * with global-norm clipping.
 *
 * LoRA dropout masks are seeded from (run seed, micro-batch number), so a
 * resumed run draws the same masks as one that never stopped.
 *
 * A step whose loss or gradient norm is not finite makes no update (the
 * parameters, moments and AdamW's step count stay as they were) and says so
 * in `nonFinite`; the trainer then stops or skips it. An update that leaves
 * a non-finite parameter (a finite gradient times an absurd learning rate)
 * cannot be undone and is reported as "update".
 *
 * @module
 */

import type { AdamWConfig } from "../backend/adamw.ts";
import type { LlamaModel } from "../model/llama.ts";
import { attentionPairs, type BatchWork } from "./flops.ts";
import { batchOf, type PlannedStep } from "./packing.ts";
import type { SequenceToPack } from "../model/batch.ts";
import type { FrozenPrefix } from "./frozen_prefix.ts";

/** Which value of a step was not finite: its loss, its gradient norm, or the parameters after its update. */
export type NonFinite = "loss" | "gradient" | "update";

/** What one step did. */
export interface StepResult {
  /** Mean cross-entropy over the step's completion tokens (before the update). */
  readonly loss: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  /** null for a good step; otherwise what was not finite ("loss" and "gradient": no update was made). */
  readonly nonFinite: NonFinite | null;
  /** The work of the step's micro-batches. */
  readonly work: BatchWork;
}

/** Options of {@link trainStep}. */
export interface StepOptions {
  /** AdamW hyperparameters with this step's rate. */
  readonly adamw: AdamWConfig;
  /** The run's seed. */
  readonly seed: number;
  /** Number of the step's first micro-batch in the run (distinct for every micro-batch of the run). */
  readonly firstMicroBatch: number;
  /** The examples' frozen-layer outputs: forwards then start at the lowest adapted layer. */
  readonly prefix?: FrozenPrefix;
}

/**
 * The dropout seed of micro-batch `micro` of a run seeded `seed` (the seed
 * in the high 32 bits, the micro-batch number in the low; layer.ts then
 * hashes it per module).
 *
 * @example
 * ```ts
 * import { dropoutSeedOf } from "./step.ts";
 * dropoutSeedOf(42, 7); // 180388626439n
 * ```
 */
export function dropoutSeedOf(seed: number, micro: number): bigint {
  return (BigInt(seed >>> 0) << 32n) | BigInt(micro >>> 0);
}

/**
 * Runs one optimizer step of `model` (which must have adapters) over the
 * micro-batches of `step`.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { LlamaModel } from "../model/llama.ts";
 * import { loadModel } from "../model/load.ts";
 * import { trainStep } from "./step.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: { r: 4, alpha: 8 } });
 * const examples = [{ tokens: [1, 403, 407, 261, 378], completionStart: 3 }, { tokens: [1, 403, 2], completionStart: 2 }];
 * const step = { epoch: 0, batches: [[0], [1]] }; // two micro-batches, one optimizer step
 * const r = trainStep(model, examples, step, { adamw: { lr: 1e-3 }, seed: 42, firstMicroBatch: 0 });
 * r.work.lossRows; // 3
 * r.nonFinite; // null
 * ```
 */
export function trainStep(
  model: LlamaModel,
  examples: readonly SequenceToPack[],
  step: PlannedStep,
  options: StepOptions,
): StepResult {
  const lora = model.lora;
  if (!lora) throw new Error("trainStep: the model has no LoRA adapters to train");
  const batches = step.batches.map((indices) => batchOf(examples, indices));
  const lossRows = batches.reduce((n, b) => n + b.lossRows.length, 0);
  const work = { tokens: 0, attentionPairs: 0, lossRows };
  lora.zeroGrads();
  let lossSum = 0;
  batches.forEach((batch, m) => {
    lossSum += model.forward(batch, {
      dropoutSeed: dropoutSeedOf(options.seed, options.firstMicroBatch + m),
      hidden: options.prefix?.of(step.batches[m]),
    }).lossSum;
    // The step's loss is the mean over all its completion tokens, whichever micro-batch holds them.
    model.backward({ gradScale: 1 / lossRows });
    work.tokens += batch.tokens.length;
    work.attentionPairs += attentionPairs(batch.cuSeqlens);
  });
  const loss = lossSum / lossRows;
  if (!Number.isFinite(loss)) return { loss, gradNorm: lora.state.gradNorm(), nonFinite: "loss", work };
  const gradNorm = lora.state.update(options.adamw); // makes no update when the norm is not finite
  if (!Number.isFinite(gradNorm)) return { loss, gradNorm, nonFinite: "gradient", work };
  return { loss, gradNorm, nonFinite: Number.isFinite(lora.state.paramNorm()) ? null : "update", work };
}
