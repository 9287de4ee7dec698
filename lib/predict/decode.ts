/**
 * The two ways prediction turns a prompt into a label:
 *
 * - "generate", the seed's: greedy decoding (temperature 0) of at most
 *   `maxNewTokens` tokens, stopped by EOS; the answer is the generated text
 *   (special tokens dropped) trimmed, compared with the labels as an exact
 *   string. An answer that is no label is invalid: the metrics count it as
 *   wrong. In multi-label mode the answer is split on commas and every part
 *   must be a label.
 * - "score": every label's completion (its tokens after the prompt, then
 *   EOS: exactly what training puts the loss on) is scored after the
 *   prompt, the prompt run once through the KV cache and shared by all
 *   labels; the likeliest label is the answer, so it is always valid, and
 *   the softmax over the labels' sequence log-probabilities gives each
 *   label's probability. Single-label only.
 *
 * @module
 */

import { formatLabels, splitLabels } from "../data/labels.ts";
import type { PromptFormat } from "../train/sft_examples.ts";
import { buildSftExample } from "../train/sft_examples.ts";
import type { TextTokenizer } from "../data/truncate.ts";
import { generateGreedy, scoreContinuations } from "../model/generate.ts";
import type { LlamaModel } from "../model/llama.ts";

/** How answers are decoded: the seed's greedy generation, or ranking the labels by likelihood. */
export type DecodeMode = "generate" | "score";

/** The decode modes, for option parsing. */
export const DECODE_MODES: readonly DecodeMode[] = ["generate", "score"];

/** How a batch is decoded, with everything each mode needs. */
export type Decoding =
  | {
    readonly mode: "generate";
    /** The label set: answers are matched against it. */
    readonly labels: readonly string[];
    /** Answers hold comma-separated labels. */
    readonly multiLabel: boolean;
    /** Most tokens generated per answer. */
    readonly maxNewTokens: number;
    /** Ids that end an answer (EOS). */
    readonly stopTokens: readonly number[];
    /** Generated ids to text, special tokens left out. */
    readonly decode: (ids: number[]) => string;
  }
  | {
    readonly mode: "score";
    /** The label set, in the order of `completions`. */
    readonly labels: readonly string[];
    /** Each label's completion ids after a prompt, EOS included ({@link labelCompletions}). */
    readonly completions: readonly (readonly number[])[];
  };

/** One example's decoded answer. */
export interface DecodedAnswer {
  /** The predicted label (labels joined by ", " in multi-label mode), or null when the answer is no label. */
  readonly pred: string | null;
  /** The generated text, trimmed (generate mode). */
  readonly answer?: string;
  /** Each label's probability, in label order (score mode). */
  readonly probabilities?: number[];
}

/**
 * The label an answer names, or null when it names none: single-label, the
 * trimmed answer must equal a label; multi-label, every comma-separated part
 * must be a label (the result lists them in label order).
 *
 * @example
 * ```ts
 * import { labelOfAnswer } from "./decode.ts";
 * labelOfAnswer(" spam ", ["ham", "spam"], false); // "spam"
 * labelOfAnswer("spam!", ["ham", "spam"], false); // null
 * labelOfAnswer("b, a", ["a", "b", "c"], true); // "a, b"
 * ```
 */
export function labelOfAnswer(answer: string, labels: readonly string[], multiLabel: boolean): string | null {
  const text = answer.trim();
  if (!multiLabel) return labels.includes(text) ? text : null;
  const parts = splitLabels(text);
  if (parts.length === 0 || parts.some((p) => !labels.includes(p))) return null;
  return formatLabels(parts, labels);
}

/**
 * Softmax of log-probabilities: the probability of each candidate given that
 * the answer is one of them. Computed from the largest so nothing overflows.
 *
 * @example
 * ```ts
 * import { softmax } from "./decode.ts";
 * softmax([Math.log(3), Math.log(1)]); // [0.75, 0.25]
 * ```
 */
export function softmax(logProbs: ArrayLike<number>): number[] {
  const values = Array.from(logProbs);
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * Each label's completion ids after a prompt of `format`, EOS included:
 * the tokens training puts the loss on (lib/train/sft_examples.ts builds
 * them the same way), so scoring ranks exactly what the adapter learned.
 *
 * @example
 * ```ts
 * import { labelCompletions } from "./decode.ts";
 * // A toy tokenizer: one id per character.
 * const tokenizer = {
 *   encode: (s: string) => [...s].map((c) => c.charCodeAt(0)),
 *   decode: (ids: number[]) => String.fromCharCode(...ids),
 * };
 * const format = { prompt: (t: string) => `${t}:`, completion: (a: string) => ` ${a}` };
 * labelCompletions(["no", "yes"], format, tokenizer, 0); // [[32, 110, 111, 0], [32, 121, 101, 115, 0]]
 * ```
 */
export function labelCompletions(
  labels: readonly string[],
  format: PromptFormat,
  tokenizer: TextTokenizer,
  eosId: number,
): number[][] {
  return labels.map((label) => {
    const ex = buildSftExample("text", label, { format, tokenizer, eosId, maxSeqLength: Number.MAX_SAFE_INTEGER });
    return ex.tokens.slice(ex.completionStart);
  });
}

/**
 * Decodes one batch of prompts (token ids) with `model`: one answer per
 * prompt, in order.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { LlamaModel } from "../model/llama.ts";
 * import { loadModel } from "../model/load.ts";
 * import { decodeBatch } from "./decode.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * const [a] = decodeBatch(model, [[1, 403, 407, 261, 378]], {
 *   mode: "score",
 *   labels: ["girl", "boy"],
 *   completions: [[432, 2], [383, 2]],
 * });
 * a.probabilities!.reduce((x, y) => x + y); // 1 (up to rounding)
 * ```
 */
export function decodeBatch(
  model: LlamaModel,
  prompts: readonly (readonly number[])[],
  decoding: Decoding,
): DecodedAnswer[] {
  if (decoding.mode === "score") {
    const scores = scoreContinuations(model, prompts, decoding.completions);
    return scores.map((s) => {
      const probabilities = softmax(s);
      let best = 0;
      for (let k = 1; k < s.length; k++) if (s[k] > s[best]) best = k;
      return { pred: decoding.labels[best], probabilities };
    });
  }
  const stop = new Set(decoding.stopTokens);
  const outputs = generateGreedy(model, prompts, {
    maxNewTokens: decoding.maxNewTokens,
    stopTokens: decoding.stopTokens,
  });
  return outputs.map((ids) => {
    const answer = decoding.decode(ids.filter((t) => !stop.has(t))).trim();
    return { pred: labelOfAnswer(answer, decoding.labels, decoding.multiLabel), answer };
  });
}
