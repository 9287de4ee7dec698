/**
 * SentencePiece-style BPE (Llama 2, TinyLlama, llama2.c's stories models) in
 * tokenizer.json terms: spaces become "▁", each stretch of text between added
 * tokens gets a "▁" in front (the `legacy` behaviour of HF's Llama tokenizer,
 * and llama.cpp's), characters missing from the vocabulary fall back to
 * <0xNN> byte tokens, and decoding undoes all three. A GGUF of such a model
 * carries scores instead of merges; the merges are recovered from them as
 * transformers does.
 *
 * @module
 */

import type { ComponentJson } from "./json.ts";
import { GGUF_METADATA, TokenizerError } from "./errors.ts";

/**
 * The normalizer of a SentencePiece BPE tokenizer: optional "▁" prefix, spaces -> "▁".
 *
 * @example
 * ```ts
 * import { sentencePieceNormalizer } from "./sentencepiece.ts";
 * sentencePieceNormalizer(true).normalizers; // [Prepend ▁, Replace " " -> ▁]
 * ```
 */
export function sentencePieceNormalizer(addSpacePrefix: boolean): ComponentJson {
  const replace = { type: "Replace", pattern: { String: " " }, content: "▁" };
  return { type: "Sequence", normalizers: addSpacePrefix ? [{ type: "Prepend", prepend: "▁" }, replace] : [replace] };
}

/**
 * The decoder of a SentencePiece BPE tokenizer: "▁" -> space, <0xNN> runs ->
 * text, then the prefix space removed when one was added.
 *
 * @example
 * ```ts
 * import { buildDecoder } from "./decode.ts";
 * import { sentencePieceDecoder } from "./sentencepiece.ts";
 * buildDecoder(sentencePieceDecoder(true))(["▁Hi", "<0x21>"]).join(""); // "Hi!"
 * ```
 */
export function sentencePieceDecoder(addSpacePrefix: boolean): ComponentJson {
  const steps: ComponentJson[] = [
    { type: "Replace", pattern: { String: "▁" }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (addSpacePrefix) steps.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  return { type: "Sequence", decoders: steps };
}

/**
 * Merge rules implied by a vocabulary and its scores (transformers'
 * `generate_merges`): every split of a token into two tokens is a merge,
 * ranked by the token's score (higher first), then by longer left part,
 * then longer right part; ties keep vocabulary order, and the splits of one
 * token are ordered by the ids of their parts.
 *
 * @example
 * ```ts
 * import { mergesFromScores } from "./sentencepiece.ts";
 * mergesFromScores(["a", "b", "ab", "abb"], [0, 0, -1, -2]); // [["a", "b"], ["ab", "b"]]
 * ```
 */
export function mergesFromScores(tokens: readonly string[], scores: ArrayLike<number>): [string, string][] {
  if (scores.length !== tokens.length) {
    throw new TokenizerError(
      GGUF_METADATA,
      `${tokens.length} tokens but ${scores.length} scores; the GGUF metadata is inconsistent`,
    );
  }
  // Python dict semantics: a repeated token keeps its first position, its last id and its last score.
  const ids = new Map<string, number>();
  const scoreOf = new Map<string, number>();
  tokens.forEach((t, i) => {
    ids.set(t, i);
    scoreOf.set(t, scores[i]);
  });
  // Only splits whose two lengths are token lengths can name two tokens: a long token costs its length, not its square.
  const lengths = new Set<number>();
  for (const t of ids.keys()) lengths.add(Array.from(t).length);
  const found: { left: string; right: string; score: number; leftLen: number; rightLen: number }[] = [];
  for (const [token, score] of scoreOf) {
    const chars = Array.from(token);
    const local: { left: string; right: string; score: number; leftLen: number; rightLen: number }[] = [];
    for (let k = 1; k < chars.length; k++) {
      if (!lengths.has(k) || !lengths.has(chars.length - k)) continue;
      const left = chars.slice(0, k).join("");
      const right = chars.slice(k).join("");
      if (ids.has(left) && ids.has(right)) local.push({ left, right, score, leftLen: k, rightLen: chars.length - k });
    }
    local.sort((a, b) => ids.get(a.left)! - ids.get(b.left)! || ids.get(a.right)! - ids.get(b.right)!);
    found.push(...local);
  }
  // Array.prototype.sort is stable, like Python's sorted(reverse=True).
  found.sort((a, b) => b.score - a.score || b.leftLen - a.leftLen || b.rightLen - a.rightLen);
  return found.map((m) => [m.left, m.right]);
}
