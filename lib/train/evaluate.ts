/**
 * Evaluation on the validation set during training: the mean loss over the
 * completion tokens (label and EOS) and the accuracy of one of the two
 * decoding modes of prediction:
 *
 * - "generate", the seed's: greedy generation, the answer (up to EOS,
 *   special tokens dropped, trimmed) compared with the gold label as an
 *   exact string; an answer that is no label counts as wrong.
 * - "score": every label's completion (its tokens and EOS) is scored after
 *   the prompt and the likeliest label is the answer; always a label.
 *
 * @module
 */

import { generateGreedy, scoreContinuations } from "../model/generate.ts";
import type { LlamaModel } from "../model/llama.ts";
import { batchOf, packSorted } from "./packing.ts";
import { promptIds, type SftExample } from "./sft_examples.ts";

/** How answers are decoded for the accuracy. */
export type EvalDecoding =
  | {
    readonly kind: "generate";
    /** Generated ids to text (special tokens left out). */
    readonly decode: (ids: number[]) => string;
    /** Ids that end an answer (EOS). */
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

/** Greedy answers of the examples in `indices`. */
function generated(
  model: LlamaModel,
  examples: readonly SftExample[],
  indices: readonly number[],
  d: Extract<EvalDecoding, { kind: "generate" }>,
  maxNewTokens: number,
): string[] {
  const stop = new Set(d.stopTokens);
  const outputs = generateGreedy(model, indices.map((i) => promptIds(examples[i])), {
    maxNewTokens,
    stopTokens: d.stopTokens,
  });
  return outputs.map((ids) => d.decode(ids.filter((t) => !stop.has(t))).trim());
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
 * at most `tokenBudget` tokens.
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
): EvalResult {
  if (examples.length === 0) throw new RangeError("evaluate: the validation set is empty");
  let lossSum = 0, count = 0;
  for (const indices of packSorted(examples.map((e) => e.tokens.length), tokenBudget)) {
    const r = model.forward(batchOf(examples, indices), { training: false });
    lossSum += r.lossSum;
    count += r.count;
  }
  // Generation leaves room for the longest gold completion; scoring runs each prompt once per answer.
  const newTokens = decoding.kind === "generate"
    ? Math.max(...examples.map((e) => e.tokens.length - e.completionStart))
    : Math.max(...decoding.completions.map((c) => c.length));
  const copies = decoding.kind === "generate" ? 1 : decoding.completions.length;
  const lengths = examples.map((e) => (e.completionStart + newTokens) * copies);
  let correct = 0;
  for (const indices of packSorted(lengths, tokenBudget)) {
    const answers = decoding.kind === "generate"
      ? generated(model, examples, indices, decoding, newTokens)
      : scored(model, examples, indices, decoding);
    answers.forEach((answer, k) => {
      if (answer === examples[indices[k]].answer) correct++;
    });
  }
  return { loss: lossSum / count, accuracy: correct / examples.length, examples: examples.length };
}
