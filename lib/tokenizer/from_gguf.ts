/**
 * A GGUF file keeps its tokenizer as metadata (llama.cpp's `tokenizer.ggml.*`
 * keys). This rebuilds the tokenizer.json it stands for, so one code path
 * encodes both: `gpt2` is byte-level BPE whose split rule is named by
 * `tokenizer.ggml.pre`, `llama` is SentencePiece-style BPE with byte fallback.
 * Control tokens (and, for `llama`, the unknown token) become special added
 * tokens, user-defined ones plain added tokens.
 *
 * @module
 */

import type { AddedTokenJson, ComponentJson, TokenizerJson } from "./json.ts";
import { GGUF_METADATA, TokenizerError } from "./errors.ts";
import { LLAMA3_PATTERN } from "./pretokenize.ts";
import { describe } from "../util/describe.ts";
import { mergesFromScores, sentencePieceDecoder, sentencePieceNormalizer } from "./sentencepiece.ts";

/** What a GGUF's metadata says about its tokenizer, as tokenizer.json plus the ids it names. */
export interface GgufTokenizerSpec {
  /** The equivalent tokenizer.json. */
  json: TokenizerJson;
  /** Whether encode prepends BOS by default (tokenizer.ggml.add_bos_token). */
  addBos: boolean;
  /** Whether encode appends EOS by default (tokenizer.ggml.add_eos_token). */
  addEos: boolean;
  /** tokenizer.ggml.bos_token_id. */
  bosId?: number;
  /** tokenizer.ggml.eos_token_id. */
  eosId?: number;
  /** tokenizer.ggml.padding_token_id. */
  padId?: number;
}

// llama.cpp's token types.
const TYPE_UNKNOWN = 2;
const TYPE_CONTROL = 3;
const TYPE_USER_DEFINED = 4;

// tokenizer.ggml.pre -> the pre-tokenizer llama.cpp applies for it (its llama-vocab.cpp groups).
const LLAMA3_PRE = ["llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx", "falcon3", "pixtral", "midm-2.0", "lfm2"];
const DIGITS_PRE = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"];
const GPT2_PRE = ["default", "gpt-2", "gpt2", "mpt", "olmo", "jais"];

/**
 * The tokenizer.json and special ids that GGUF metadata describes; metadata
 * that does not describe a tokenizer lorac reads is a TokenizerError.
 *
 * @example
 * ```ts
 * import { tokenizerSpecFromGguf } from "./from_gguf.ts";
 * const spec = tokenizerSpecFromGguf({
 *   "tokenizer.ggml.model": "gpt2",
 *   "tokenizer.ggml.tokens": ["<|endoftext|>", "a", "b", "ab"],
 *   "tokenizer.ggml.token_type": [3, 1, 1, 1],
 *   "tokenizer.ggml.merges": ["a b"],
 *   "tokenizer.ggml.eos_token_id": 0,
 * });
 * spec.json.added_tokens?.[0].content; // "<|endoftext|>"
 * ```
 */
export function tokenizerSpecFromGguf(metadata: Record<string, unknown>): GgufTokenizerSpec {
  const model = metadata["tokenizer.ggml.model"];
  if (model !== "gpt2" && model !== "llama") {
    throw new TokenizerError(
      GGUF_METADATA,
      `tokenizer.ggml.model is ${describe(model)}; lorac reads "gpt2" (byte-level BPE: Llama 3, SmolLM) ` +
        `and "llama" (SentencePiece BPE: Llama 2, TinyLlama)`,
    );
  }
  const tokens = stringList(metadata, "tokenizer.ggml.tokens");
  const types = numberList(metadata, "tokenizer.ggml.token_type", tokens.length);
  // No prototype: a token may be spelled "__proto__".
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => (vocab[t] = i));
  const id = (key: string) => optionalId(metadata, `tokenizer.ggml.${key}`, tokens.length);
  const flag = (key: string) => optionalFlag(metadata, `tokenizer.ggml.${key}`);
  const added = (special: (type: number) => boolean): AddedTokenJson[] =>
    types === undefined ? [] : tokens.flatMap((content, i) =>
      special(types[i]) || types[i] === TYPE_USER_DEFINED
        ? [{
          id: i,
          content,
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: false,
          special: special(types[i]),
        }]
        : []
    );
  const merges = metadata["tokenizer.ggml.merges"] === undefined
    ? undefined
    : stringList(metadata, "tokenizer.ggml.merges");
  const ids = { bosId: id("bos_token_id"), eosId: id("eos_token_id"), padId: id("padding_token_id") };

  if (model === "gpt2") {
    if (!merges) {
      throw new TokenizerError(
        GGUF_METADATA,
        "tokenizer.ggml.merges is missing; a gpt2 (byte-level BPE) tokenizer needs it",
      );
    }
    const pre = metadata["tokenizer.ggml.pre"] ?? "default";
    if (typeof pre !== "string") {
      throw new TokenizerError(GGUF_METADATA, `tokenizer.ggml.pre should be a string, found ${describe(pre)}`);
    }
    return {
      json: {
        added_tokens: added((t) => t === TYPE_CONTROL),
        normalizer: null,
        pre_tokenizer: byteLevelPreTokenizer(pre),
        post_processor: null,
        decoder: { type: "ByteLevel" },
        model: { type: "BPE", vocab, merges, ignore_merges: LLAMA3_PRE.includes(pre) },
      },
      addBos: flag("add_bos_token") ?? false,
      addEos: flag("add_eos_token") ?? false,
      ...ids,
    };
  }
  const prefix = flag("add_space_prefix") ?? true;
  const unk = id("unknown_token_id") ?? vocab["<unk>"];
  return {
    json: {
      added_tokens: added((t) => t === TYPE_CONTROL || t === TYPE_UNKNOWN),
      normalizer: sentencePieceNormalizer(prefix),
      pre_tokenizer: null,
      post_processor: null,
      decoder: sentencePieceDecoder(prefix),
      model: {
        type: "BPE",
        vocab,
        merges: merges ?? mergesFromScores(tokens, numberList(metadata, "tokenizer.ggml.scores", tokens.length) ?? []),
        unk_token: unk === undefined ? null : tokens[unk],
        byte_fallback: true,
        fuse_unk: true,
      },
    },
    // Older llama files have no flag; llama.cpp and transformers then add BOS.
    addBos: flag("add_bos_token") ?? true,
    addEos: flag("add_eos_token") ?? false,
    ...ids,
  };
}

function byteLevelPreTokenizer(pre: string): ComponentJson {
  const byteLevel = (useRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, use_regex: useRegex });
  if (LLAMA3_PRE.includes(pre)) {
    return {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_PATTERN }, behavior: "Isolated", invert: false },
        byteLevel(false),
      ],
    };
  }
  if (DIGITS_PRE.includes(pre)) {
    return { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] };
  }
  if (GPT2_PRE.includes(pre)) return byteLevel(true);
  throw new TokenizerError(
    GGUF_METADATA,
    `tokenizer.ggml.pre is ${describe(pre)}, a split rule lorac does not know; known: ` +
      [...LLAMA3_PRE, ...DIGITS_PRE, ...GPT2_PRE].join(", "),
  );
}

function stringList(metadata: Record<string, unknown>, key: string): string[] {
  const v = metadata[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
    throw new TokenizerError(GGUF_METADATA, `${key} should be a list of strings, found ${summary(v)}`);
  }
  return v as string[];
}

function numberList(metadata: Record<string, unknown>, key: string, length: number): ArrayLike<number> | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  const list = ArrayBuffer.isView(v) && !(v instanceof DataView) ? v as unknown as ArrayLike<number | bigint> : v;
  if (!Array.isArray(list) && !ArrayBuffer.isView(list)) {
    throw new TokenizerError(GGUF_METADATA, `${key} should be a list of numbers, found ${summary(v)}`);
  }
  const numbers = Array.from(list as ArrayLike<number | bigint>, Number);
  if (numbers.length !== length || numbers.some((x) => Number.isNaN(x))) {
    throw new TokenizerError(
      GGUF_METADATA,
      `${key} should hold ${length} numbers (one per token), found ${summary(v)}`,
    );
  }
  return numbers;
}

function optionalId(metadata: Record<string, unknown>, key: string, vocabSize: number): number | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n >= vocabSize) {
    throw new TokenizerError(GGUF_METADATA, `${key} is ${summary(v)}, not a token id below ${vocabSize}`);
  }
  return n;
}

function optionalFlag(metadata: Record<string, unknown>, key: string): boolean | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    throw new TokenizerError(GGUF_METADATA, `${key} should be a boolean, found ${summary(v)}`);
  }
  return v;
}

/** A metadata value for a message: lists by their length, other values as they are. */
function summary(v: unknown): string {
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return `a list of ${(v as ArrayLike<unknown>).length}`;
  return describe(v);
}
