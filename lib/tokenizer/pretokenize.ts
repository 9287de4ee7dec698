/**
 * Pre-tokenizers of tokenizer.json: cut normalized text into the words that
 * BPE sees, and (ByteLevel) spell them in the byte alphabet. Implemented:
 * Split (Llama 3's regex), ByteLevel (GPT-2's regex), Digits (SmolLM),
 * Metaspace (SentencePiece) and Sequence.
 *
 * @module
 */

import { toByteLevel } from "./bytelevel.ts";
import { type ComponentJson, components, field, pattern, unsupported } from "./json.ts";
import { compileHfPattern, literalRegExp } from "./regex.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe } from "../util/describe.ts";

/**
 * Llama 3's split pattern (tokenizer.json of Llama 3 / 3.1 / 3.2, llama.cpp's "llama-bpe").
 *
 * @example
 * ```ts
 * import { LLAMA3_PATTERN } from "./pretokenize.ts";
 * import { compileHfPattern, literalRegExp } from "./regex.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe } from "../util/describe.ts";
 * "It's 12345".match(compileHfPattern(LLAMA3_PATTERN)); // ["It", "'s", " ", "123", "45"]
 * ```
 */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * GPT-2's split pattern, the one ByteLevel applies when `use_regex` is true.
 *
 * @example
 * ```ts
 * import { GPT2_PATTERN } from "./pretokenize.ts";
 * import { compileHfPattern, literalRegExp } from "./regex.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe } from "../util/describe.ts";
 * "It's 12345".match(compileHfPattern(GPT2_PATTERN)); // ["It", "'s", " 12345"]
 * ```
 */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * Cuts `text` into pieces appended to `out` (never empty ones). `atStart`
 * says the text begins the input (Metaspace's "first" scheme reads it); the
 * result says whether the first piece still begins where `text` began.
 */
export type PreTokenizer = (text: string, atStart: boolean, out: string[]) => boolean;

/** How a Split keeps what its pattern matched (HF's SplitDelimiterBehavior). */
export type SplitBehavior = "Isolated" | "Removed" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

const KINDS = ["Sequence", "Split", "ByteLevel", "Digits", "Metaspace"] as const;
const BEHAVIORS: readonly SplitBehavior[] = [
  "Isolated",
  "Removed",
  "MergedWithPrevious",
  "MergedWithNext",
  "Contiguous",
];

/**
 * Splits `text` on the matches of `re` (a global RegExp) as HF's Split does.
 *
 * @example
 * ```ts
 * import { splitOnPattern } from "./pretokenize.ts";
 * const out: string[] = [];
 * splitOnPattern("ab12c", /\p{N}/gu, "Contiguous", false, out);
 * out; // ["ab", "12", "c"]
 * ```
 */
export function splitOnPattern(
  text: string,
  re: RegExp,
  behavior: SplitBehavior,
  invert: boolean,
  out: string[],
): boolean {
  // Fast path of Llama 3 and GPT-2: every match and every gap is a piece.
  if (behavior === "Isolated") {
    let prev = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const end = m.index + m[0].length;
      if (end === m.index) {
        re.lastIndex = m.index + ((text.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1);
        continue;
      }
      if (prev < m.index) out.push(text.slice(prev, m.index));
      out.push(m[0]);
      prev = end;
    }
    if (prev < text.length) out.push(text.slice(prev));
    return true;
  }
  // The general case, as HF: (offsets, is_match) over the whole text, then merged by behavior.
  const starts: number[] = [];
  const matched: boolean[] = [];
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex = m.index + ((text.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1);
      continue;
    }
    if (prev < m.index) starts.push(prev), matched.push(invert);
    starts.push(m.index), matched.push(!invert);
    prev = m.index + m[0].length;
  }
  if (prev < text.length) starts.push(prev), matched.push(invert);
  starts.push(text.length);
  const pieces: [number, number][] = [];
  const n = matched.length;
  if (behavior === "MergedWithNext") {
    // A delimiter starts the piece after it (runs of delimiters stay apart).
    for (let i = n - 1, next = false; i >= 0; next = matched[i], i--) {
      if (matched[i] && !next && pieces.length > 0) pieces[pieces.length - 1][0] = starts[i];
      else pieces.push([starts[i], starts[i + 1]]);
    }
    pieces.reverse();
  } else {
    for (let i = 0, last = false; i < n; last = matched[i], i++) {
      const merge = behavior === "MergedWithPrevious"
        ? matched[i] && !last
        : behavior === "Contiguous"
        ? matched[i] === last && i > 0
        : false;
      if (behavior === "Removed" && matched[i]) continue;
      if (merge && pieces.length > 0) pieces[pieces.length - 1][1] = starts[i + 1];
      else pieces.push([starts[i], starts[i + 1]]);
    }
  }
  for (const [s, e] of pieces) if (e > s) out.push(text.slice(s, e));
  return pieces.length === 0 || pieces[0][0] === 0;
}

/**
 * Builds the pre-tokenizer a tokenizer.json component describes (null: the
 * whole text is one word).
 *
 * @example
 * ```ts
 * import { buildPreTokenizer } from "./pretokenize.ts";
 * const pre = buildPreTokenizer({ type: "ByteLevel", add_prefix_space: false, use_regex: true })!;
 * const words: string[] = [];
 * pre("Hello world", true, words);
 * words; // ["Hello", "Ġworld"]
 * ```
 */
export function buildPreTokenizer(json: ComponentJson | null | undefined): PreTokenizer | undefined {
  if (!json) return undefined;
  switch (json.type) {
    case "Sequence":
      return sequence(components(json, "pretokenizers").map(buildPreTokenizer).filter((p) => p !== undefined));
    case "Split": {
      const p = pattern(json);
      const behavior = field(json, "behavior", "string") as SplitBehavior;
      if (!BEHAVIORS.includes(behavior)) {
        throw new TokenizerError(
          TOKENIZER_JSON,
          `Split.behavior ${describe(behavior)} is not one of ${BEHAVIORS.join(", ")}`,
        );
      }
      const invert = field(json, "invert", "boolean", false);
      const re = "literal" in p ? literalRegExp(p.literal) : compileHfPattern(p.regex);
      return (text, _atStart, out) => splitOnPattern(text, re, behavior, invert, out);
    }
    case "ByteLevel": {
      const prefixSpace = field(json, "add_prefix_space", "boolean", true);
      const re = field(json, "use_regex", "boolean", true) ? compileHfPattern(GPT2_PATTERN) : undefined;
      return (text, _atStart, out) => {
        if (prefixSpace && !text.startsWith(" ")) text = " " + text;
        if (!re) {
          if (text.length > 0) out.push(toByteLevel(text));
          return true;
        }
        const from = out.length;
        splitOnPattern(text, re, "Isolated", false, out);
        for (let i = from; i < out.length; i++) out[i] = toByteLevel(out[i]);
        return true;
      };
    }
    case "Digits": {
      const behavior = field(json, "individual_digits", "boolean", false) ? "Isolated" : "Contiguous";
      const re = /\p{N}/gu;
      return (text, _atStart, out) => splitOnPattern(text, re, behavior, false, out);
    }
    case "Metaspace":
      return metaspace(json);
    default:
      throw unsupported("pre-tokenizer", json.type, KINDS);
  }
}

/** Runs each step on every piece of the step before. */
function sequence(steps: PreTokenizer[]): PreTokenizer {
  return (text, atStart, out) => {
    let pieces = [text];
    let firstAtZero = true;
    for (const step of steps) {
      const next: string[] = [];
      for (let i = 0; i < pieces.length; i++) {
        const kept = step(pieces[i], atStart && firstAtZero && i === 0, next);
        if (i === 0) firstAtZero &&= kept;
      }
      pieces = next;
    }
    for (const p of pieces) out.push(p);
    return firstAtZero;
  };
}

/** SentencePiece's whitespace: spaces become `replacement`, which may be prepended and may split. */
function metaspace(json: ComponentJson): PreTokenizer {
  const rep = field(json, "replacement", "string", "▁");
  // Older files say add_prefix_space (true = "always"); newer ones say prepend_scheme.
  const legacy = json.add_prefix_space;
  const scheme = field(json, "prepend_scheme", "string", legacy === false ? "never" : "always");
  if (!["always", "first", "never"].includes(scheme)) {
    throw new TokenizerError(
      TOKENIZER_JSON,
      `Metaspace.prepend_scheme ${describe(scheme)} is not always, first or never`,
    );
  }
  const split = field(json, "split", "boolean", true);
  const re = literalRegExp(rep);
  return (text, atStart, out) => {
    text = text.replaceAll(" ", rep);
    if (!text.startsWith(rep) && (scheme === "always" || (scheme === "first" && atStart))) text = rep + text;
    if (!split) {
      if (text.length > 0) out.push(text);
      return true;
    }
    return splitOnPattern(text, re, "MergedWithNext", false, out);
  };
}
