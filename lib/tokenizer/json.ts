/**
 * The parts of HF's tokenizer.json that lorac reads, and checked accessors
 * that say which field of which component was wrong.
 *
 * @module
 */

/** One component of tokenizer.json (normalizer, pre-tokenizer, decoder, ...): a `type` tag and its fields. */
export interface ComponentJson {
  /** The component's kind, e.g. "Split", "ByteLevel", "TemplateProcessing". */
  type: string;
  [field: string]: unknown;
}

/** An entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  /** Its id. */
  id: number;
  /** Its text. */
  content: string;
  /** Match only where it is not inside a word. */
  single_word?: boolean;
  /** Swallow the whitespace on its left. */
  lstrip?: boolean;
  /** Swallow the whitespace on its right. */
  rstrip?: boolean;
  /** Match against the normalized text instead of the raw text. */
  normalized?: boolean;
  /** Special (skipped by decode with skipSpecialTokens). */
  special?: boolean;
}

/** tokenizer.json's BPE `model`. */
export interface BpeModelJson {
  /** "BPE"; other model types are refused. */
  type?: string;
  /** Token -> id. */
  vocab: Record<string, number>;
  /** Merge rules, best first, as "a b" strings or [a, b] pairs. */
  merges: (string | [string, string])[];
  /** Token emitted for text the vocabulary cannot spell, if any. */
  unk_token?: string | null;
  /** Spell unknown characters as <0xNN> byte tokens. */
  byte_fallback?: boolean;
  /** Fuse consecutive unknown tokens into one. */
  fuse_unk?: boolean;
  /** Emit a word that is itself in the vocabulary without merging (Llama 3). */
  ignore_merges?: boolean;
  /** Must be empty: WordPiece-style prefixes are not Llama-family. */
  continuing_subword_prefix?: string | null;
  /** Must be empty. */
  end_of_word_suffix?: string | null;
  /** Must be null or 0: encoding is deterministic. */
  dropout?: number | null;
}

/** A tokenizer.json document (HF `tokenizers`). */
export interface TokenizerJson {
  /** Tokens matched before the model runs. */
  added_tokens?: AddedTokenJson[];
  /** Text normalizer, or null. */
  normalizer?: ComponentJson | null;
  /** Pre-tokenizer, or null. */
  pre_tokenizer?: ComponentJson | null;
  /** Post-processor (adds BOS/EOS), or null. */
  post_processor?: ComponentJson | null;
  /** Decoder, or null. */
  decoder?: ComponentJson | null;
  /** The model. */
  model: BpeModelJson;
}

/** The fields of tokenizer_config.json that change encoding. */
export interface TokenizerConfigJson {
  /** BOS token text, or an AddedToken-like object. */
  bos_token?: string | { content: string } | null;
  /** EOS token text, or an AddedToken-like object. */
  eos_token?: string | { content: string } | null;
  /** Padding token text, or an AddedToken-like object. */
  pad_token?: string | { content: string } | null;
  /** Overrides the post-processor: prepend BOS or not. */
  add_bos_token?: boolean;
  /** Overrides the post-processor: append EOS or not. */
  add_eos_token?: boolean;
}

/** The JSON field types components use, by their `typeof` name. */
export interface FieldKinds {
  /** A JSON string. */
  string: string;
  /** A JSON boolean. */
  boolean: boolean;
  /** A JSON number. */
  number: number;
}

/**
 * Reads `component[name]`, checking its JavaScript type; `fallback` when absent or null.
 *
 * @example
 * ```ts
 * import { field } from "./json.ts";
 * field({ type: "Digits", individual_digits: true }, "individual_digits", "boolean", false); // true
 * ```
 */
export function field<K extends keyof FieldKinds>(
  component: ComponentJson,
  name: string,
  kind: K,
  fallback?: FieldKinds[K],
): FieldKinds[K] {
  const value = component[name];
  if (value === undefined || value === null) {
    if (fallback === undefined) {
      throw new TypeError(`tokenizer.json: ${component.type} needs a "${name}" field (${kind})`);
    }
    return fallback;
  }
  const actual = typeof value;
  if (actual !== kind) {
    throw new TypeError(
      `tokenizer.json: ${component.type}.${name} should be a ${kind}, found ${JSON.stringify(value)}`,
    );
  }
  return value as FieldKinds[K];
}

/**
 * The sub-components of a Sequence-like component (`name` is "normalizers", "pretokenizers", ...).
 *
 * @example
 * ```ts
 * import { components } from "./json.ts";
 * components({ type: "Sequence", decoders: [{ type: "Fuse" }] }, "decoders").length; // 1
 * ```
 */
export function components(component: ComponentJson, name: string): ComponentJson[] {
  const list = component[name];
  if (!Array.isArray(list) || list.some((c) => typeof c !== "object" || c === null || typeof c.type !== "string")) {
    throw new TypeError(`tokenizer.json: ${component.type}.${name} should be a list of components with a "type"`);
  }
  return list as ComponentJson[];
}

/**
 * The text of an HF `pattern` field: `{ "String": s }` (taken literally) or `{ "Regex": r }`.
 *
 * @example
 * ```ts
 * import { pattern } from "./json.ts";
 * pattern({ type: "Replace", pattern: { String: " " }, content: "▁" }); // { literal: " " }
 * ```
 */
export function pattern(component: ComponentJson): { literal: string } | { regex: string } {
  const p = component.pattern as Record<string, unknown> | undefined;
  if (p && typeof p.String === "string") return { literal: p.String };
  if (p && typeof p.Regex === "string") return { regex: p.Regex };
  throw new TypeError(`tokenizer.json: ${component.type}.pattern should be {"String": ...} or {"Regex": ...}`);
}

/**
 * Names a component kind lorac does not implement, listing the ones it does.
 *
 * @example
 * ```ts
 * import { unsupported } from "./json.ts";
 * unsupported("pre-tokenizer", "Whitespace", ["Split", "ByteLevel"]).message;
 * ```
 */
export function unsupported(role: string, type: string, known: readonly string[]): Error {
  return new Error(
    `tokenizer.json: ${role} "${type}" is not supported (lorac implements ${known.join(", ")}); ` +
      "Llama-family tokenizers use only those",
  );
}
