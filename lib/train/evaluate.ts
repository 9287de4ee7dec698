/**
 * Evaluation on the validation set during training: the mean loss over the
 * completion tokens (label and EOS) and the accuracy of one of the two
 * decoding modes of prediction:
 *
 * - "generate", the seed's: greedy generation. Greedy decoding reproduces
 *   the gold completion exactly when, fed the gold tokens so far, the model's
 *   likeliest next token is the gold one at every completion position (an
 *   end-of-sequence token standing for EOS) — so one teacher-forced forward,
 *   the same that gives the loss, decides it, with no decoding loop. This
 *   is predict's exact-match accuracy except where greedy spells the label
 *   with other tokens (it then counts here as wrong).
 * - "score": every label's completion (its tokens and EOS) is scored after
 *   the prompt and the likeliest label is the answer; always a label.
 *
 * With a {@link FrozenPrefix} of the examples, the loss forward starts at
 * the lowest adapted layer (the scoring runs the whole model).
 *
 * @module
 */

import { scoreContinuations } from "../model/generate.ts";
import type { LlamaModel } from "../model/llama.ts";
import type { FrozenPrefix } from "./frozen_prefix.ts";
import { batchOf, packSorted } from "./packing.ts";
import { promptIds, type SftExample } from "./sft_examples.ts";

/** How answers are decoded for the accuracy. */
export type EvalDecoding =
  | {
    readonly kind: "generate";
    /** Ids that end an answer (EOS): predicting any of them where the gold has one is a match. */
    readonly stopTokens: readonly number[];
  }
  | {
    readonly kind: "score";
    /** The possible answers (the labels). */
    readonly answers: readonly string[];
    /** Each answer's completion ids after the prompt, EOS included. */
    readonly completions: readonly (readonly number[])[];
  };

/** What an evaluation measures. */
export interface EvalResult {
  /** Mean cross-entropy over the completion tokens. */
  readonly loss: number;
  /** Share of examples answered with their gold answer. */
  readonly accuracy: number;
  /** Examples evaluated. */
  readonly examples: number;
}

/** Whether greedy decoding would reproduce each example's completion, from the argmax at its completion rows. */
function greedyMatches(
  examples: readonly SftExample[],
  indices: readonly number[],
  predicted: Int32Array,
  stopTokens: ReadonlySet<number>,
): number {
  let matches = 0, row = 0;
  for (const i of indices) {
    const e = examples[i];
    let same = true;
    for (let p = e.completionStart; p < e.tokens.length; p++, row++) {
      const gold = e.tokens[p], got = predicted[row];
      if (got !== gold && !(stopTokens.has(gold) && stopTokens.has(got))) same = false;
    }
    if (same) matches++;
  }
  return matches;
}

/** The likeliest answer of each example in `indices`. */
function scored(
  model: LlamaModel,
  examples: readonly SftExample[],
  indices: readonly number[],
  d: Extract<EvalDecoding, { kind: "score" }>,
): string[] {
  const scores = scoreContinuations(model, indices.map((i) => promptIds(examples[i])), d.completions);
  return scores.map((s) => d.answers[s.indexOf(Math.max(...s))]);
}

/**
 * Loss and accuracy of `model` on `examples` (no dropout), with batches of
 * at most `tokenBudget` tokens; `prefix`, when given, holds the examples'
 * frozen-layer outputs.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { LlamaModel } from "../model/llama.ts";
 * import { loadModel } from "../model/load.ts";
 * import { evaluate } from "./evaluate.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * // "Once upon a time": is " time" or " day" the likelier answer?
 * const examples = [{ tokens: [1, 403, 407, 261, 378, 2], completionStart: 4, answer: "time", truncated: false }];
 * const decoding = { kind: "score", answers: ["time", "day"], completions: [[378, 2], [328, 2]] } as const;
 * evaluate(model, examples, 1024, decoding).accuracy; // 1
 * ```
 */
export function evaluate(
  model: LlamaModel,
  examples: readonly SftExample[],
  tokenBudget: number,
  decoding: EvalDecoding,
  prefix?: FrozenPrefix,
): EvalResult {
  if (examples.length === 0) throw new RangeError("evaluate: the validation set is empty");
  const greedy = decoding.kind === "generate";
  const stopTokens = new Set(greedy ? decoding.stopTokens : []);
  let lossSum = 0, count = 0, correct = 0;
  for (const indices of packSorted(examples.map((e) => e.tokens.length), tokenBudget)) {
    const r = model.forward(batchOf(examples, indices), {
      training: false,
      argmax: greedy,
      hidden: prefix?.of(indices),
    });
    lossSum += r.lossSum;
    count += r.count;
    if (greedy) correct += greedyMatches(examples, indices, r.predicted!, stopTokens);
  }
  if (decoding.kind === "score") {
    // Scoring runs each prompt once per answer.
    const newTokens = Math.max(...decoding.completions.map((c) => c.length));
    const lengths = examples.map((e) => (e.completionStart + newTokens) * decoding.completions.length);
    for (const indices of packSorted(lengths, tokenBudget)) {
      scored(model, examples, indices, decoding).forEach((answer, k) => {
        if (answer === examples[indices[k]].answer) correct++;
      });
    }
  }
  return { loss: lossSum / count, accuracy: correct / examples.length, examples: examples.length };
}
