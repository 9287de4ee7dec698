/**
 * Fits an example into `max_seq_length` tokens by shortening its text only:
 * the instruction, the exemplars and the trailing `label:` (and, in training,
 * the answer and EOS) always survive. The seed left this to TRL, which cuts
 * the end of the sequence, and with it the label.
 *
 * The tokenizer is any object with `encode` / `decode` (lib/tokenizer's
 * `Tokenizer` is one). Token counts are measured on the whole rendered
 * prompt, because BPE merges across the text's edges.
 *
 * @module
 */

/** What truncation needs from a tokenizer (lib/tokenizer's `Tokenizer` fits). */
export interface TextTokenizer {
  /** Token ids of `text`; with `addSpecialTokens` (default true) including BOS as the model sees it. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** The text of `ids`. */
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
}

/** Options of {@link fitText}. */
export interface FitOptions {
  /** Renders the sequence whose length is limited, for a given text (e.g. `t => template.prompt(t)`). */
  render: (text: string) => string;
  /** The tokenizer of the model. */
  tokenizer: TextTokenizer;
  /** The longest sequence allowed, in tokens (`--max_seq_length`). */
  maxTokens: number;
  /** Tokens to keep free after the rendered sequence (the EOS in training; the answer's tokens in prediction). */
  reserve?: number;
}

/** A text that fits, with the token count of its rendered sequence. */
export interface Fitted {
  /** The text, shortened if it had to be. */
  text: string;
  /** Tokens of the rendered sequence, plus the reserve. */
  tokens: number;
  /** Whether the text was shortened. */
  truncated: boolean;
}

/** The first `n` tokens of `ids` as text, without a trailing partial character or trailing whitespace. */
function decodePrefix(tokenizer: TextTokenizer, ids: number[], n: number): string {
  return tokenizer.decode(ids.slice(0, n), { skipSpecialTokens: true }).replace(/\uFFFD+$/, "").trimEnd();
}

/**
 * Shortens `text` (from the end, on a token boundary) until the rendered
 * sequence plus the reserve is at most `maxTokens` tokens. Throws when even
 * an empty text does not fit, saying by how much.
 *
 * @example
 * ```ts
 * import { fitText } from "./truncate.ts";
 * // A toy tokenizer: one token per character.
 * const tokenizer = {
 *   encode: (s: string) => [...s].map((c) => c.codePointAt(0)!),
 *   decode: (ids: number[]) => String.fromCodePoint(...ids),
 * };
 * fitText("abcdefgh", { render: (t) => `text: ${t}\nlabel:`, tokenizer, maxTokens: 17 });
 * // { text: "abcd", tokens: 17, truncated: true }
 * ```
 */
export function fitText(text: string, options: FitOptions): Fitted {
  const { render, tokenizer, maxTokens } = options;
  const reserve = options.reserve ?? 0;
  const measure = (t: string) => tokenizer.encode(render(t)).length + reserve;
  const whole = measure(text);
  if (whole <= maxTokens) return { text, tokens: whole, truncated: false };
  const overhead = measure("");
  if (overhead > maxTokens) {
    throw new RangeError(
      `max_seq_length ${maxTokens} is too short: the prompt without its text already takes ${overhead} tokens ` +
        `(instruction, exemplars, answer); raise --max_seq_length to ${overhead + 64} or more, or use fewer exemplars`,
    );
  }
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  let keep = Math.min(ids.length - 1, maxTokens - overhead);
  while (keep > 0) {
    const t = decodePrefix(tokenizer, ids, keep);
    const n = measure(t);
    if (n <= maxTokens) return { text: t, tokens: n, truncated: true };
    keep -= Math.max(1, n - maxTokens);
  }
  return { text: "", tokens: overhead, truncated: true };
}

/**
 * The first `maxTokens` tokens of `text` (all of it when shorter): for
 * capping few-shot exemplars so that they leave room for the text itself.
 *
 * @example
 * ```ts
 * import { truncateTokens } from "./truncate.ts";
 * const tokenizer = {
 *   encode: (s: string) => [...s].map((c) => c.codePointAt(0)!),
 *   decode: (ids: number[]) => String.fromCodePoint(...ids),
 * };
 * truncateTokens("abcdef", tokenizer, 3); // "abc"
 * ```
 */
export function truncateTokens(text: string, tokenizer: TextTokenizer, maxTokens: number): string {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  return ids.length <= maxTokens ? text : decodePrefix(tokenizer, ids, maxTokens);
}
