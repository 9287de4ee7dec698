/**
 * The parts of HF's tokenizer.json (and tokenizer_config.json) that lorac
 * reads: a check of a parsed document's shape, and checked accessors that say
 * which field of which component was wrong, as {@link TokenizerError}s.
 *
 * @module
 */

import { describe, oneLine } from "../util/describe.ts";
import { TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, TokenizerError } from "./errors.ts";

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
      throw new TokenizerError(TOKENIZER_JSON, `${component.type} needs a "${name}" field (${kind})`);
    }
    return fallback;
  }
  const actual = typeof value;
  if (actual !== kind) {
    throw new TokenizerError(
      TOKENIZER_JSON,
      `${component.type}.${name} should be a ${kind}, found ${describe(value)}`,
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
  if (!Array.isArray(list) || !list.every(isComponent)) {
    throw new TokenizerError(TOKENIZER_JSON, `${component.type}.${name} should be a list of components with a "type"`);
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
  const p = component.pattern;
  if (isObject(p) && typeof p.String === "string") return { literal: p.String };
  if (isObject(p) && typeof p.Regex === "string") return { regex: p.Regex };
  throw new TokenizerError(
    TOKENIZER_JSON,
    `${component.type}.pattern should be {"String": ...} or {"Regex": ...}, found ${describe(p)}`,
  );
}

/**
 * Names a component kind lorac does not implement, listing the ones it does.
 *
 * @example
 * ```ts
 * import { unsupported } from "./json.ts";
 * unsupported("pre-tokenizer", "Whitespace", ["Split", "ByteLevel"]).problem;
 * ```
 */
export function unsupported(role: string, type: string, known: readonly string[]): TokenizerError {
  return new TokenizerError(
    TOKENIZER_JSON,
    `${role} ${describe(type)} is not supported (lorac implements ${known.join(", ")}); ` +
      "Llama-family tokenizers use only those",
  );
}

/** Sequences nest components; deeper than this is not a real tokenizer (and the builders recurse). */
const MAX_NESTING = 32;
/** Token ids are non-negative 32-bit integers (they index Int32Arrays). */
const MAX_ID = 0x7fffffff;
const ROLES = ["normalizer", "pre_tokenizer", "post_processor", "decoder"] as const;
const FLAGS = ["single_word", "lstrip", "rstrip", "normalized", "special"] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isComponent(v: unknown): v is ComponentJson {
  return isObject(v) && typeof v.type === "string";
}

/** How deeply arrays and objects nest in `v` (0 for a scalar), counted without recursion. */
function nesting(v: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (typeof x !== "object" || x === null) continue;
    deepest = Math.max(deepest, d + 1);
    if (d > MAX_NESTING) break;
    for (const child of Object.values(x)) stack.push([child, d + 1]);
  }
  return deepest;
}

/**
 * Whether `v` can be a token id: an integer from 0 to 2^31 - 1.
 *
 * @example
 * ```ts
 * import { isTokenId } from "./json.ts";
 * [isTokenId(5), isTokenId(-1), isTokenId(1.5), isTokenId(2 ** 31)]; // [true, false, false, false]
 * ```
 */
export function isTokenId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
}

/**
 * Checks that a parsed tokenizer.json has the shape lorac reads (a BPE
 * model with a vocab object and a merges list, added tokens with ids and
 * contents, components that are objects with a "type"); throws a
 * {@link TokenizerError} naming the first field that is not.
 *
 * @example
 * ```ts
 * import { checkTokenizerJson } from "./json.ts";
 * checkTokenizerJson({ model: { type: "BPE", vocab: { a: 0 }, merges: [] } }).model.vocab; // { a: 0 }
 * ```
 */
export function checkTokenizerJson(json: unknown): TokenizerJson {
  const fail = (problem: string): never => {
    throw new TokenizerError(TOKENIZER_JSON, problem);
  };
  if (!isObject(json)) return fail(`the file holds ${describe(json, 40)}, not a tokenizer object`);
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) fail(`added_tokens should be a list, found ${describe(added)}`);
    (added as unknown[]).forEach((t, i) => {
      if (!isObject(t)) return fail(`added_tokens[${i}] should be an object, found ${describe(t)}`);
      if (!isTokenId(t.id)) {
        fail(`added_tokens[${i}].id should be a token id (0 to ${MAX_ID}), found ${describe(t.id)}`);
      }
      if (typeof t.content !== "string") {
        fail(`added_tokens[${i}].content should be a string, found ${describe(t.content)}`);
      }
      for (const flag of FLAGS) {
        const v = t[flag];
        if (v !== undefined && v !== null && typeof v !== "boolean") {
          fail(`added_tokens[${i}].${flag} should be true or false, found ${describe(v)}`);
        }
      }
    });
  }
  for (const role of ROLES) {
    const c = json[role];
    if (c !== undefined && c !== null && !isComponent(c)) {
      fail(`${role} should be null or an object with a "type", found ${describe(c)}`);
    }
    if (nesting(c) > MAX_NESTING) fail(`${role} nests more than ${MAX_NESTING} levels deep`);
  }
  const model = json.model;
  if (!isObject(model)) return fail(`model should be an object, found ${describe(model)}`);
  if (model.type !== undefined && model.type !== "BPE") {
    fail(`model type ${describe(model.type)} is not supported; lorac reads BPE tokenizers`);
  }
  if (!isObject(model.vocab)) fail(`model.vocab should be an object of token -> id, found ${describe(model.vocab)}`);
  if (!Array.isArray(model.merges)) fail(`model.merges should be a list, found ${describe(model.merges)}`);
  const optional = (key: string, kind: "string" | "boolean" | "number") => {
    const v = model[key];
    if (v !== undefined && v !== null && typeof v !== kind) {
      fail(`model.${key} should be a ${kind}, found ${describe(v)}`);
    }
  };
  optional("unk_token", "string");
  optional("continuing_subword_prefix", "string");
  optional("end_of_word_suffix", "string");
  optional("byte_fallback", "boolean");
  optional("fuse_unk", "boolean");
  optional("ignore_merges", "boolean");
  optional("dropout", "number");
  return json as unknown as TokenizerJson;
}

/**
 * Checks the tokenizer_config.json fields lorac reads (special tokens as
 * strings or {content}, add_bos_token / add_eos_token as booleans); null
 * counts as absent. Throws a {@link TokenizerError} naming the field.
 *
 * @example
 * ```ts
 * import { checkTokenizerConfig } from "./json.ts";
 * checkTokenizerConfig({ bos_token: { content: "<s>" }, add_bos_token: true, chat_template: "..." });
 * // { bos_token: "<s>", add_bos_token: true }
 * ```
 */
export function checkTokenizerConfig(json: unknown): TokenizerConfigJson {
  const fail = (problem: string): never => {
    throw new TokenizerError(TOKENIZER_CONFIG_JSON, problem);
  };
  if (!isObject(json)) return fail(`the file holds ${describe(json, 40)}, not an object`);
  const out: TokenizerConfigJson = {};
  for (const key of ["bos_token", "eos_token", "pad_token"] as const) {
    const v = json[key];
    if (v === undefined || v === null) continue;
    const text = isObject(v) ? v.content : v;
    if (typeof text !== "string") fail(`${key} should be a token string or {"content": ...}, found ${describe(v)}`);
    out[key] = text as string;
  }
  for (const key of ["add_bos_token", "add_eos_token"] as const) {
    const v = json[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "boolean") fail(`${key} should be true or false, found ${describe(v)}`);
    out[key] = v as boolean;
  }
  return out;
}

/**
 * Parses the text of a JSON file, or throws a {@link TokenizerError} naming `source`.
 *
 * @example
 * ```ts
 * import { parseJsonText } from "./json.ts";
 * parseJsonText('{"a": 1}', "tokenizer.json"); // { a: 1 }
 * ```
 */
export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(source, `not valid JSON (${oneLine((e as Error).message, 120)}); re-download the file`);
  }
}
