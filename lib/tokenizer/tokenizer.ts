/**
 * The tokenizer of a Llama-family model, built from tokenizer.json (plus
 * tokenizer_config.json) or from a GGUF's metadata, encoding exactly as HF
 * `tokenizers` does: added tokens are cut out first, the text between them is
 * normalized, pre-tokenized into words and each word BPE-encoded; BOS/EOS
 * come from the post-processor, or from tokenizer_config's add_bos_token /
 * add_eos_token when it sets them (as transformers does).
 *
 * @module
 */

import { type AddedToken, AddedTokenMatcher, type Segment } from "./added.ts";
import { Bpe } from "./bpe.ts";
import { buildDecoder, type Decoder } from "./decode.ts";
import { tokenizerSpecFromGguf } from "./from_gguf.ts";
import {
  checkTokenizerConfig,
  checkTokenizerJson,
  parseJsonText,
  type TokenizerConfigJson,
  type TokenizerJson,
} from "./json.ts";
import { GGUF_METADATA, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe, oneLine } from "../util/describe.ts";
import { buildNormalizer, type Normalizer } from "./normalize.ts";
import { buildTemplate, type Template } from "./postprocess.ts";
import { buildPreTokenizer, type PreTokenizer } from "./pretokenize.ts";

export type { TokenizerConfigJson, TokenizerJson } from "./json.ts";

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS, ...). Default true, as in HF. */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, chat markers). Default false, as in HF. */
  skipSpecialTokens?: boolean;
}

/** Options for building a tokenizer. */
export interface TokenizerOptions {
  /** Words whose ids are remembered (default 65536; 0 turns the cache off). */
  cacheCapacity?: number;
  /** The tokenizer's file as error messages name it (default "tokenizer.json", or "GGUF metadata"). */
  source?: string;
  /** The tokenizer_config.json file as error messages name it (default "tokenizer_config.json"). */
  configSource?: string;
}

/** Runs `build`, renaming the placeholder file names of its TokenizerErrors to the real ones. */
function named<T>(build: () => T, names: Record<string, string | undefined>): T {
  try {
    return build();
  } catch (e) {
    const name = e instanceof TokenizerError ? names[e.source] : undefined;
    if (name === undefined || name === (e as TokenizerError).source) throw e;
    throw new TokenizerError(name, (e as TokenizerError).problem, { cause: (e as TokenizerError).cause });
  }
}

/** Special ids and template chosen by whoever built the tokenizer. */
interface Specials {
  bosId?: number;
  eosId?: number;
  padId?: number;
  template: Template;
}

/**
 * A BPE tokenizer (byte-level or SentencePiece-style) equal to HF `tokenizers`.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = Tokenizer.fromGgufMetadata({
 *   "tokenizer.ggml.model": "gpt2",
 *   "tokenizer.ggml.pre": "smollm",
 *   "tokenizer.ggml.tokens": ["<s>", "h", "i", "Ġ", "1", "hi", "Ġhi"],
 *   "tokenizer.ggml.token_type": [3, 1, 1, 1, 1, 1, 1],
 *   "tokenizer.ggml.merges": ["h i", "Ġ hi"],
 *   "tokenizer.ggml.bos_token_id": 0,
 *   "tokenizer.ggml.add_bos_token": true,
 * });
 * tok.encode("hi hi11"); // [0, 5, 6, 4, 4]
 * tok.decode([0, 5, 6], { skipSpecialTokens: true }); // "hi hi"
 * ```
 */
export class Tokenizer {
  /** One more than the largest id (vocabulary and added tokens). */
  readonly vocabSize: number;
  /** The beginning-of-sequence id, when the tokenizer names one. */
  readonly bosId: number | undefined;
  /** The end-of-sequence id, when the tokenizer names one. */
  readonly eosId: number | undefined;
  /** The padding id, when the tokenizer names one. */
  readonly padId: number | undefined;
  /** Tokens matched in the text before BPE, in id order. */
  readonly addedTokens: readonly AddedToken[];
  readonly #bpe: Bpe;
  readonly #raw: AddedTokenMatcher;
  readonly #normalizedMatcher: AddedTokenMatcher;
  readonly #normalizer: Normalizer | undefined;
  readonly #preTokenizer: PreTokenizer | undefined;
  readonly #decoder: Decoder;
  readonly #template: Template;
  readonly #idToToken: string[];
  readonly #specialContents: Set<string>;

  private constructor(
    json: TokenizerJson,
    specials: (t: (token: string) => number | undefined) => Specials,
    options: TokenizerOptions,
  ) {
    const model = checkTokenizerJson(json).model;
    const fail = (problem: string): never => {
      throw new TokenizerError(TOKENIZER_JSON, problem);
    };
    if (model.continuing_subword_prefix || model.end_of_word_suffix) {
      fail("BPE with continuing_subword_prefix / end_of_word_suffix is not supported");
    }
    if (model.dropout) fail(`BPE dropout ${model.dropout} makes encoding random; set it to null`);
    const vocab = new Map<string, number>();
    for (const token in model.vocab) if (Object.hasOwn(model.vocab, token)) vocab.set(token, model.vocab[token]);
    this.#bpe = new Bpe({
      vocab,
      merges: model.merges,
      unkToken: model.unk_token,
      byteFallback: model.byte_fallback,
      fuseUnk: model.fuse_unk,
      ignoreMerges: model.ignore_merges,
      cacheCapacity: options.cacheCapacity,
    });
    this.#normalizer = buildNormalizer(json.normalizer);
    this.#preTokenizer = buildPreTokenizer(json.pre_tokenizer);
    this.#decoder = buildDecoder(json.decoder);

    const added: AddedToken[] = (json.added_tokens ?? []).map((t) => ({
      id: t.id,
      content: t.content,
      singleWord: t.single_word ?? false,
      lstrip: t.lstrip ?? false,
      rstrip: t.rstrip ?? false,
      normalized: t.normalized ?? !(t.special ?? false),
      special: t.special ?? false,
    })).sort((a, b) => a.id - b.id);
    this.addedTokens = added;
    // HF's trie lists special tokens before the others; the first one with a given text wins.
    const ordered = [...added.filter((t) => t.special), ...added.filter((t) => !t.special)];
    const raw = ordered.filter((t) => !t.normalized);
    const normalized = ordered.filter((t) => t.normalized);
    this.#raw = new AddedTokenMatcher(raw);
    this.#normalizedMatcher = new AddedTokenMatcher(
      normalized,
      normalized.map((t) => this.#normalizer?.(t.content) ?? t.content),
    );
    this.#specialContents = new Set(added.filter((t) => t.special).map((t) => t.content));

    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.#idToToken = new Array(maxId + 1);
    for (const [token, id] of vocab) this.#idToToken[id] = token;
    for (const t of added) this.#idToToken[t.id] = t.content;
    this.vocabSize = this.#idToToken.length;

    const s = specials((token) => added.find((t) => t.content === token)?.id ?? vocab.get(token));
    // encode's output must decode: every id the template adds is a token.
    for (const id of [...s.template.prefix, ...s.template.suffix]) {
      if (this.#idToToken[id] === undefined) fail(`post_processor adds id ${id}, which is not a token`);
    }
    this.bosId = s.bosId;
    this.eosId = s.eosId;
    this.padId = s.padId;
    this.#template = s.template;
  }

  /**
   * Reads a tokenizer.json and, optionally, the tokenizer_config.json beside
   * it. A file that cannot be read or used is a {@link TokenizerError} naming it.
   *
   * @example
   * ```ts ignore
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = await Tokenizer.fromFile("model/tokenizer.json", "model/tokenizer_config.json");
   * tok.encode("Hello");
   * ```
   */
  static async fromFile(
    tokenizerPath: string,
    configPath?: string,
    options: TokenizerOptions = {},
  ): Promise<Tokenizer> {
    const read = async (path: string) => {
      try {
        return await Deno.readTextFile(path);
      } catch (e) {
        throw new TokenizerError(path, `cannot read: ${oneLine((e as Error).message)}`, { cause: e });
      }
    };
    const json = await read(tokenizerPath);
    const config = configPath ? await read(configPath) : undefined;
    return Tokenizer.fromText(json, config, { source: tokenizerPath, configSource: configPath, ...options });
  }

  /**
   * Builds a tokenizer from the text of a tokenizer.json (and of a
   * tokenizer_config.json); errors name `options.source` and `options.configSource`.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = Tokenizer.fromText('{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}');
   * tok.encode("ab"); // [2]
   * ```
   */
  static fromText(json: string, config?: string, options: TokenizerOptions = {}): Tokenizer {
    const source = options.source ?? TOKENIZER_JSON;
    const configSource = options.configSource ?? TOKENIZER_CONFIG_JSON;
    const parsed = parseJsonText(json, source) as TokenizerJson;
    const parsedConfig = config === undefined ? undefined : parseJsonText(config, configSource) as TokenizerConfigJson;
    return Tokenizer.fromJson(parsed, parsedConfig, options);
  }

  /**
   * Builds a tokenizer from parsed tokenizer.json (and tokenizer_config.json)
   * contents, checking their shape; errors are {@link TokenizerError}s.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = Tokenizer.fromJson({
   *   added_tokens: [{ id: 3, content: "<s>", special: true }],
   *   normalizer: null,
   *   pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
   *   decoder: { type: "ByteLevel" },
   *   model: { type: "BPE", vocab: { a: 0, "Ġ": 1, "Ġa": 2 }, merges: ["Ġ a"] },
   * }, { bos_token: "<s>", add_bos_token: true });
   * tok.encode("a a"); // [3, 0, 2]
   * ```
   */
  static fromJson(json: TokenizerJson, config?: TokenizerConfigJson, options: TokenizerOptions = {}): Tokenizer {
    const names = { [TOKENIZER_JSON]: options.source, [TOKENIZER_CONFIG_JSON]: options.configSource };
    return named(() => {
      const settings = config === undefined ? undefined : checkTokenizerConfig(config);
      return new Tokenizer(json, (lookup) => {
        const fromJson = buildTemplate(json.post_processor);
        const idOf = (field: "bos_token" | "eos_token" | "pad_token") => {
          const text = settings?.[field];
          if (text === undefined || text === null) return undefined;
          const id = lookup(typeof text === "string" ? text : text.content);
          if (id === undefined) {
            throw new TokenizerError(
              TOKENIZER_CONFIG_JSON,
              `${field} ${describe(text)} is not a token of the tokenizer.json beside it`,
            );
          }
          return id;
        };
        const bosId = idOf("bos_token") ?? fromJson.prefix[0];
        const eosId = idOf("eos_token");
        const pick = (flag: boolean | undefined, id: number | undefined, name: string, fallback: number[]) => {
          if (flag === undefined) return fallback;
          if (flag && id === undefined) {
            throw new TokenizerError(TOKENIZER_CONFIG_JSON, `sets add_${name}_token but names no ${name}_token`);
          }
          return flag ? [id!] : [];
        };
        const template = {
          prefix: pick(settings?.add_bos_token, bosId, "bos", fromJson.prefix),
          suffix: pick(settings?.add_eos_token, eosId, "eos", fromJson.suffix),
        };
        return { bosId, eosId, padId: idOf("pad_token"), template };
      }, options);
    }, names);
  }

  /**
   * Builds a tokenizer from a GGUF's metadata (the `tokenizer.ggml.*` keys:
   * model "gpt2" or "llama", tokens, merges or scores, token_type, pre,
   * bos/eos/padding ids, add_bos_token, add_space_prefix), given as a plain
   * object or a Map (numbers may be bigints, numeric lists typed arrays).
   * Metadata that does not describe a usable tokenizer is a
   * {@link TokenizerError} naming `options.source` (default "GGUF metadata").
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = Tokenizer.fromGgufMetadata({
   *   "tokenizer.ggml.model": "llama",
   *   "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "▁", "h", "i", "▁h", "▁hi"],
   *   "tokenizer.ggml.scores": [0, 0, 0, -1, -2, -3, -4, -5],
   *   "tokenizer.ggml.token_type": [2, 3, 3, 1, 1, 1, 1, 1],
   *   "tokenizer.ggml.bos_token_id": 1,
   * });
   * tok.encode("hi"); // [1, 7]
   * ```
   */
  static fromGgufMetadata(
    metadata: Record<string, unknown> | ReadonlyMap<string, unknown>,
    options: TokenizerOptions = {},
  ): Tokenizer {
    // Components built from the metadata report under tokenizer.json's name: they are the GGUF's too.
    const names = { [GGUF_METADATA]: options.source, [TOKENIZER_JSON]: options.source ?? GGUF_METADATA };
    return named(() => {
      const spec = tokenizerSpecFromGguf(
        metadata instanceof Map ? Object.fromEntries(metadata) : metadata as Record<string, unknown>,
      );
      return new Tokenizer(spec.json, () => {
        const need = (flag: boolean, id: number | undefined, name: string) => {
          if (flag && id === undefined) {
            throw new TokenizerError(
              GGUF_METADATA,
              `tokenizer.ggml.add_${name}_token is true but tokenizer.ggml.${name}_token_id is missing`,
            );
          }
          return flag ? [id!] : [];
        };
        return {
          bosId: spec.bosId,
          eosId: spec.eosId,
          padId: spec.padId,
          template: { prefix: need(spec.addBos, spec.bosId, "bos"), suffix: need(spec.addEos, spec.eosId, "eos") },
        };
      }, options);
    }, names);
  }

  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    const words: string[] = [];
    for (const segment of this.#raw.empty ? [{ text, atStart: true }] : this.#raw.split(text, true)) {
      if ("id" in segment) {
        ids.push(segment.id);
        continue;
      }
      // HF drops empty stretches before pre-tokenizing (a prefix space must not turn "" into a token).
      const normalized = this.#normalizer ? this.#normalizer(segment.text) : segment.text;
      if (normalized.length === 0) continue;
      const parts: Segment[] = this.#normalizedMatcher.empty
        ? [{ text: normalized, atStart: segment.atStart }]
        : this.#normalizedMatcher.split(normalized, segment.atStart);
      for (const part of parts) {
        if ("id" in part) {
          ids.push(part.id);
          continue;
        }
        words.length = 0;
        if (this.#preTokenizer) this.#preTokenizer(part.text, part.atStart, words);
        else words.push(part.text);
        for (const word of words) this.#bpe.tokenize(word, ids);
      }
    }
    if (options.addSpecialTokens === false) return ids;
    const { prefix, suffix } = this.#template;
    return prefix.length === 0 && suffix.length === 0 ? ids : [...prefix, ...ids, ...suffix];
  }

  /** The text of `ids`. Throws on an id outside the vocabulary. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const token = this.#idToToken[ids[i]];
      if (token === undefined) {
        throw new RangeError(`decode: id ${ids[i]} (position ${i}) is not a token; ids run 0..${this.vocabSize - 1}`);
      }
      if (options.skipSpecialTokens && this.#specialContents.has(token)) continue;
      tokens.push(token);
    }
    return this.#decoder(tokens).join("");
  }

  /** The id of a token string (added tokens first), if it is one. */
  tokenToId(token: string): number | undefined {
    return this.addedTokens.find((t) => t.content === token)?.id ?? this.#bpe.vocab.get(token);
  }

  /** The token string of an id, if it is one. */
  idToToken(id: number): string | undefined {
    return this.#idToToken[id];
  }

  /** Whether `id` is a special token (decode can skip it). */
  isSpecial(id: number): boolean {
    const token = this.#idToToken[id];
    return token !== undefined && this.#specialContents.has(token);
  }

  /** How many words the encode cache holds now. */
  get cachedWords(): number {
    return this.#bpe.cacheSize;
  }
}
