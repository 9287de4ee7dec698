/**
 * The BPE model of HF `tokenizers`: a word starts as one symbol per character
 * (or per byte, for characters only byte fallback can spell), then the
 * adjacent pair with the best merge rank merges, leftmost first, until no pair
 * has a rank. A min-heap of (rank, position) over a linked list of symbols
 * makes that O(n log n), so a long word (SentencePiece treats a whole line as
 * one) costs no more than its length suggests. Results are cached per word.
 *
 * @module
 */

import { BoundedCache } from "./cache.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe } from "../util/describe.ts";

/** The settings of a BPE model (tokenizer.json's `model`, already parsed). */
export interface BpeConfig {
  /** Token -> id. */
  vocab: ReadonlyMap<string, number>;
  /** Merge rules, best first: [left, right] pairs or tokenizer.json's "left right" strings. */
  merges: ReadonlyArray<string | readonly [string, string]>;
  /** Token for text nothing else spells (none: such text is dropped, as HF does). */
  unkToken?: string | null;
  /** Spell characters missing from the vocabulary as <0xNN> tokens of their UTF-8 bytes. */
  byteFallback?: boolean;
  /** One unknown token for a run of unknown characters. */
  fuseUnk?: boolean;
  /** A word that is a vocabulary token is emitted as is, without merging (Llama 3). */
  ignoreMerges?: boolean;
  /** Words remembered (default 65536; 0 disables the cache). */
  cacheCapacity?: number;
}

// Heap keys pack (rank, position) into one float64, exact below 2^53.
const RANK_LIMIT = 2 ** 21;
const POS_LIMIT = 2 ** 32;
// Words longer than this are not cached (HF's limit too): they rarely repeat.
const MAX_CACHED_LENGTH = 256;

/**
 * A byte-level or SentencePiece-style BPE model.
 *
 * @example
 * ```ts
 * import { Bpe } from "./bpe.ts";
 * const vocab = new Map([["a", 0], ["b", 1], ["ab", 2], ["abb", 3]]);
 * const bpe = new Bpe({ vocab, merges: [["a", "b"], ["ab", "b"]] });
 * const ids: number[] = [];
 * bpe.tokenize("abba", ids);
 * ids; // [3, 0]
 * ```
 */
export class Bpe {
  /** Token -> id. */
  readonly vocab: ReadonlyMap<string, number>;
  readonly #ignoreMerges: boolean;
  readonly #fuseUnk: boolean;
  readonly #unkId: number;
  /** code point -> id of the one-character token, for the start of every word. */
  readonly #charIds = new Map<number, number>();
  /** byte -> id of its <0xNN> token, or -1; undefined without byte fallback. */
  readonly #byteIds: Int32Array | undefined;
  /** (left id, right id) -> merge rank. */
  readonly #ranks: PairTable;
  /** merge rank -> id of the merged token. */
  readonly #merged: Int32Array;
  readonly #cache: BoundedCache<string, Int32Array>;
  // Scratch for the merge loop, grown on demand: symbol ids and the linked list, and the heap.
  #ids = new Int32Array(64);
  #prev = new Int32Array(64);
  #next = new Int32Array(64);
  #heap = new Float64Array(64);

  /** Builds the model; throws a TokenizerError when an id is not a token id or a merge names a token the vocabulary lacks. */
  constructor(config: BpeConfig) {
    this.vocab = config.vocab;
    this.#ignoreMerges = config.ignoreMerges ?? false;
    this.#fuseUnk = config.fuseUnk ?? false;
    if (config.unkToken != null) {
      const id = config.vocab.get(config.unkToken);
      if (id === undefined) {
        throw new TokenizerError(
          TOKENIZER_JSON,
          `unk_token ${describe(config.unkToken)} is not in the vocabulary; fix the tokenizer file`,
        );
      }
      this.#unkId = id;
    } else {
      this.#unkId = -1;
    }
    for (const [token, id] of config.vocab) {
      if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
        throw new TokenizerError(
          TOKENIZER_JSON,
          `model.vocab: id ${describe(id)} of token ${describe(token)} is not a non-negative 32-bit integer`,
        );
      }
      const cp = token.codePointAt(0);
      if (cp !== undefined && token.length === (cp > 0xffff ? 2 : 1)) this.#charIds.set(cp, id);
    }
    if (config.byteFallback) {
      this.#byteIds = new Int32Array(256);
      for (let b = 0; b < 256; b++) {
        this.#byteIds[b] = config.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? -1;
      }
    }
    if (config.merges.length >= RANK_LIMIT) {
      throw new TokenizerError(
        TOKENIZER_JSON,
        `${config.merges.length} merges is too many (at most ${RANK_LIMIT - 1})`,
      );
    }
    this.#merged = new Int32Array(config.merges.length);
    this.#ranks = new PairTable(config.merges.length);
    for (let rank = 0; rank < config.merges.length; rank++) {
      const [a, b] = mergeParts(config.merges[rank], rank);
      const left = config.vocab.get(a);
      const right = config.vocab.get(b);
      const merged = config.vocab.get(a + b);
      if (left === undefined || right === undefined || merged === undefined) {
        const missing = left === undefined ? a : right === undefined ? b : a + b;
        throw new TokenizerError(
          TOKENIZER_JSON,
          `merge ${rank} (${describe(a)} ${describe(b)}) uses ${describe(missing)}, which is not in the vocabulary`,
        );
      }
      // A repeated merge keeps its last rank, as HF's map does.
      this.#ranks.set(left, right, rank);
      this.#merged[rank] = merged;
    }
    this.#cache = new BoundedCache(config.cacheCapacity ?? 65536);
  }

  /** Words currently cached. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Appends the ids of `word` to `out`. */
  tokenize(word: string, out: number[]): void {
    if (word.length === 0) return;
    if (this.#ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const hit = this.#cache.get(word);
    if (hit !== undefined) {
      for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    const n = this.#symbols(word);
    const ids = this.#merge(n);
    if (word.length <= MAX_CACHED_LENGTH) this.#cache.set(word, ids);
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** Fills #ids with the word's starting symbols (characters, byte tokens, unk) and returns their count. */
  #symbols(word: string): number {
    this.#reserve(word.length * 4);
    const ids = this.#ids;
    let n = 0;
    let pendingUnk = false;
    for (let i = 0; i < word.length; i++) {
      const cp = word.codePointAt(i)!;
      if (cp > 0xffff) i++;
      const id = this.#charIds.get(cp);
      if (id !== undefined) {
        if (pendingUnk) ids[n++] = this.#unkId, pendingUnk = false;
        ids[n++] = id;
        continue;
      }
      if (this.#byteIds && this.#spellBytes(cp)) {
        n = this.#appendBytes(cp, n);
        continue;
      }
      if (this.#unkId < 0) continue; // HF drops what it cannot spell when there is no unk token
      if (pendingUnk && !this.#fuseUnk) ids[n++] = this.#unkId;
      pendingUnk = true;
    }
    if (pendingUnk) ids[n++] = this.#unkId;
    return n;
  }

  /** Whether every UTF-8 byte of `cp` has a <0xNN> token. */
  #spellBytes(cp: number): boolean {
    const bytes = utf8(cp);
    for (const b of bytes) if (this.#byteIds![b] < 0) return false;
    return true;
  }

  #appendBytes(cp: number, n: number): number {
    for (const b of utf8(cp)) this.#ids[n++] = this.#byteIds![b];
    return n;
  }

  /** Merges #ids[0..n) by rank and returns the final ids. */
  #merge(n: number): Int32Array {
    const ids = this.#ids, prev = this.#prev, next = this.#next;
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    let size = 0;
    for (let i = 0; i + 1 < n; i++) {
      const rank = this.#rank(ids[i], ids[i + 1]);
      if (rank >= 0) size = this.#push(size, rank * POS_LIMIT + i);
    }
    let live = n;
    while (size > 0) {
      const top = this.#heap[0];
      size = this.#pop(size);
      const rank = Math.floor(top / POS_LIMIT);
      const pos = top - rank * POS_LIMIT;
      const right = next[pos];
      // Skip entries made stale by an earlier merge: the symbol died or its pair changed.
      if (ids[pos] < 0 || right < 0 || this.#rank(ids[pos], ids[right]) !== rank) continue;
      ids[pos] = this.#merged[rank];
      ids[right] = -1;
      live--;
      const after = next[right];
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos];
      if (before >= 0) {
        const r = this.#rank(ids[before], ids[pos]);
        if (r >= 0) size = this.#push(size, r * POS_LIMIT + before);
      }
      if (after >= 0) {
        const r = this.#rank(ids[pos], ids[after]);
        if (r >= 0) size = this.#push(size, r * POS_LIMIT + pos);
      }
    }
    const result = new Int32Array(live);
    for (let i = 0, k = 0; i >= 0 && k < live; i = next[i]) result[k++] = ids[i];
    return result;
  }

  #rank(left: number, right: number): number {
    return this.#ranks.get(left, right);
  }

  #push(size: number, key: number): number {
    if (size === this.#heap.length) {
      const grown = new Float64Array(size * 2);
      grown.set(this.#heap);
      this.#heap = grown;
    }
    const heap = this.#heap;
    let i = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
    return size + 1;
  }

  #pop(size: number): number {
    const heap = this.#heap;
    const last = heap[--size];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= last) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return size;
  }

  #reserve(n: number): void {
    if (this.#ids.length >= n) return;
    this.#ids = new Int32Array(n);
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
  }
}

/** A merge as [left, right], from a pair or a "left right" string. */
function mergeParts(merge: string | readonly [string, string], rank: number): readonly [string, string] {
  if (Array.isArray(merge)) {
    const pair = merge as unknown[];
    if (pair.length === 2 && typeof pair[0] === "string" && typeof pair[1] === "string") return [pair[0], pair[1]];
  } else if (typeof merge === "string") {
    const space = merge.indexOf(" ");
    if (space > 0 && merge.indexOf(" ", space + 1) < 0) return [merge.slice(0, space), merge.slice(space + 1)];
  }
  throw new TokenizerError(TOKENIZER_JSON, `merge ${rank} ${describe(merge)} is not two tokens`);
}

/**
 * (left id, right id) -> rank, open addressing over typed arrays: a JS Map
 * would need a packed key above 2^31, a heap number per entry, and merge
 * lookups are the inner loop of BPE.
 */
class PairTable {
  readonly #left: Int32Array;
  readonly #right: Int32Array;
  readonly #value: Int32Array;
  readonly #mask: number;

  constructor(entries: number) {
    let capacity = 16;
    while (capacity < entries * 2) capacity *= 2;
    this.#left = new Int32Array(capacity).fill(-1);
    this.#right = new Int32Array(capacity);
    this.#value = new Int32Array(capacity);
    this.#mask = capacity - 1;
  }

  set(left: number, right: number, value: number): void {
    let h = this.#slot(left, right);
    while (this.#left[h] !== -1 && (this.#left[h] !== left || this.#right[h] !== right)) h = (h + 1) & this.#mask;
    this.#left[h] = left;
    this.#right[h] = right;
    this.#value[h] = value;
  }

  /** The value for the pair, or -1. */
  get(left: number, right: number): number {
    for (let h = this.#slot(left, right);; h = (h + 1) & this.#mask) {
      const l = this.#left[h];
      if (l === -1) return -1;
      if (l === left && this.#right[h] === right) return this.#value[h];
    }
  }

  #slot(left: number, right: number): number {
    return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right, 0x85ebca77)) & this.#mask;
  }
}

/** The UTF-8 bytes of one code point. */
function utf8(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}
