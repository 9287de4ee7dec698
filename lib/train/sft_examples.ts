/**
 * Supervised fine-tuning examples as token ids: the prompt (what the model
 * reads at prediction time) and the completion (" " + label, then EOS) that
 * carries the loss, as TRL's SFTTrainer builds prompt-completion examples.
 *
 * The whole text (prompt + completion) is tokenized at once, and the
 * completion starts after the longest prefix it shares with the prompt
 * tokenized alone. Tokenizing the completion by itself would be wrong for
 * SentencePiece tokenizers, which put a "▁" in front of every encoded
 * string: " happy" alone is ["▁", "▁happy"], after the prompt it is
 * ["▁happy"].
 *
 * Over-long examples lose the end of their text only (lib/data/truncate.ts):
 * the instruction, the trailing "label:" and the completion stay whole.
 *
 * @module
 */

import { fitText, type TextTokenizer } from "../data/truncate.ts";
import type { SequenceToPack } from "../model/batch.ts";

/** One training (or validation) example as token ids. */
export interface SftExample extends SequenceToPack {
  /** Prompt then completion ids (the completion ends with EOS). */
  readonly tokens: readonly number[];
  /** Index of the first completion token: the loss falls on tokens[completionStart..]. */
  readonly completionStart: number;
  /** The gold answer (the label, or labels joined by ", "). */
  readonly answer: string;
  /** Whether the text was shortened to fit. */
  readonly truncated: boolean;
}

/** What turns a text and an answer into prompt and completion strings (lib/data/prompts.ts' PromptTemplate fits). */
export interface PromptFormat {
  /** The prompt the model reads before answering. */
  prompt(text: string): string;
  /** What follows the prompt in training: the seed's `" " + answer`. */
  completion(answer: string): string;
}

/** Options of {@link buildSftExample}. */
export interface SftOptions {
  /** The prompt template. */
  readonly format: PromptFormat;
  /** The model's tokenizer (BOS as its post-processor adds it). */
  readonly tokenizer: TextTokenizer;
  /** The id appended after the completion. */
  readonly eosId: number;
  /** Longest sequence in tokens, EOS included (`--max_seq_length`). */
  readonly maxSeqLength: number;
}

/** Length of the longest common prefix of two id lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Tokenizes one example: prompt ids, then completion ids ending with EOS,
 * the text shortened if needed so that all of it fits in maxSeqLength.
 *
 * @example
 * ```ts
 * import { buildSftExample } from "./sft_examples.ts";
 * // A toy tokenizer: BOS 1, then one id per character.
 * const tokenizer = {
 *   encode: (s: string, o?: { addSpecialTokens?: boolean }) =>
 *     [...(o?.addSpecialTokens === false ? [] : [1]), ...[...s].map((c) => c.charCodeAt(0))],
 *   decode: (ids: number[]) => String.fromCharCode(...ids.filter((i) => i !== 1)),
 * };
 * const format = { prompt: (t: string) => `${t}>`, completion: (a: string) => ` ${a}` };
 * const ex = buildSftExample("abcdef", "x", { format, tokenizer, eosId: 2, maxSeqLength: 8 });
 * ex.tokens; // [1, 97, 98, 99, 62, 32, 120, 2]: "abc>", " x", EOS
 * ex.completionStart; // 5
 * ```
 */
export function buildSftExample(text: string, answer: string, options: SftOptions): SftExample {
  const { format, tokenizer, eosId, maxSeqLength } = options;
  const fitted = fitText(text, {
    render: (t) => format.prompt(t) + format.completion(answer),
    tokenizer,
    maxTokens: maxSeqLength,
    reserve: 1,
  });
  const prompt = tokenizer.encode(format.prompt(fitted.text));
  const tokens = tokenizer.encode(format.prompt(fitted.text) + format.completion(answer));
  // A tokenizer that appends EOS itself (add_eos_token) ends both encodings with it.
  if (prompt.at(-1) === eosId) prompt.pop();
  if (tokens.at(-1) !== eosId) tokens.push(eosId);
  const completionStart = commonPrefix(prompt, tokens);
  if (completionStart === 0 || completionStart >= tokens.length - 1) {
    throw new Error(
      `the completion ${JSON.stringify(format.completion(answer))} adds no tokens after the prompt, or the prompt ` +
        "is empty: check the template and the tokenizer",
    );
  }
  if (tokens.length > maxSeqLength) {
    throw new RangeError(
      `an example takes ${tokens.length} tokens after truncation, over max_seq_length ${maxSeqLength}`,
    );
  }
  return { tokens, completionStart, answer, truncated: fitted.truncated };
}

/**
 * The prompt ids of an example: what the model reads before answering.
 *
 * @example
 * ```ts
 * import { promptIds } from "./sft_examples.ts";
 * promptIds({ tokens: [1, 5, 6, 7, 2], completionStart: 3, answer: "a", truncated: false }); // [1, 5, 6]
 * ```
 */
export function promptIds(example: SftExample): readonly number[] {
  return example.tokens.slice(0, example.completionStart);
}
