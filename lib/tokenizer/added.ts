/**
 * Added tokens (`<|begin_of_text|>`, `<|im_start|>`, `<s>`, ...) are found in
 * the text before anything else runs, as HF's AddedVocabulary does: the
 * leftmost match wins, the longest among those starting there; a
 * `single_word` token that touches a word character is dropped; `lstrip` /
 * `rstrip` swallow the whitespace beside it.
 *
 * @module
 */

import { isWhiteSpace } from "./regex.ts";

/** An added token with its matching flags. */
export interface AddedToken {
  /** Its id. */
  id: number;
  /** Its text. */
  content: string;
  /** Match only where it is not inside a word. */
  singleWord: boolean;
  /** Swallow the whitespace on its left. */
  lstrip: boolean;
  /** Swallow the whitespace on its right. */
  rstrip: boolean;
  /** Matched against normalized text (else raw text). */
  normalized: boolean;
  /** Special: decode skips it on request. */
  special: boolean;
}

/** A stretch of the input: an added token's id, or text still to tokenize. */
export type Segment = { id: number } | {
  text: string;
  /** The text begins the whole input (SentencePiece's "first" prefix reads this). */
  atStart: boolean;
};

interface TrieNode {
  next: Map<number, TrieNode>;
  token?: AddedToken;
}

// Rust's regex \w, which HF's single_word check uses; two code units hold any one code point.
const WORD_BEFORE = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;
const WORD_AFTER = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;

/**
 * Finds added tokens in text, leftmost-longest, over a trie of their contents.
 *
 * @example
 * ```ts
 * import { AddedTokenMatcher } from "./added.ts";
 * const eot = { id: 9, content: "<eot>", singleWord: false, lstrip: false, rstrip: false, normalized: false, special: true };
 * new AddedTokenMatcher([eot]).split("hi<eot>", true);
 * // [{ text: "hi", atStart: true }, { id: 9 }]
 * ```
 */
export class AddedTokenMatcher {
  readonly #root: TrieNode = { next: new Map() };
  /** First code units of the tokens: most positions are rejected with one lookup. */
  readonly #firsts = new Set<number>();
  /** Finds the next position holding a first code unit (a native scan, not a loop over every character). */
  readonly #candidate: RegExp;

  /** A matcher for `tokens`, each under the text in `patterns` (default: its content). */
  constructor(tokens: readonly AddedToken[], patterns: readonly string[] = tokens.map((t) => t.content)) {
    tokens.forEach((token, k) => {
      const text = patterns[k];
      if (text.length === 0) return;
      let node = this.#root;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) node.next.set(c, child = { next: new Map() });
        node = child;
      }
      node.token ??= token;
      this.#firsts.add(text.charCodeAt(0));
    });
    const firsts = [...this.#firsts].map((c) => `\\u${c.toString(16).padStart(4, "0")}`).join("");
    this.#candidate = new RegExp(firsts ? `[${firsts}]` : "[]", "g");
  }

  /** Whether there is nothing to match. */
  get empty(): boolean {
    return this.#firsts.size === 0;
  }

  /** Cuts `text` into added tokens and the text between them (never empty text segments). */
  split(text: string, atStart: boolean): Segment[] {
    const out: Segment[] = [];
    let done = 0; // end of the last emitted segment
    for (let i = 0; i < text.length;) {
      this.#candidate.lastIndex = i;
      const next = this.#candidate.exec(text);
      if (!next) break;
      i = next.index;
      const found = this.#longestAt(text, i);
      if (!found) {
        i++;
        continue;
      }
      const { token, end } = found;
      let start = i;
      let stop = end;
      i = end;
      if (
        token.singleWord &&
        (WORD_BEFORE.test(text.slice(Math.max(0, start - 2), start)) || WORD_AFTER.test(text.slice(stop, stop + 2)))
      ) continue;
      // Whitespace an earlier match already took stays with it.
      if (token.lstrip) { while (start > done && isWhiteSpace(text.charCodeAt(start - 1))) start--; }
      if (token.rstrip) { while (stop < text.length && isWhiteSpace(text.charCodeAt(stop))) stop++; }
      if (done < start) out.push({ text: text.slice(done, start), atStart: atStart && done === 0 });
      out.push({ id: token.id });
      done = stop;
      i = stop;
    }
    if (done < text.length) out.push({ text: text.slice(done), atStart: atStart && done === 0 });
    return out;
  }

  #longestAt(text: string, i: number): { token: AddedToken; end: number } | undefined {
    if (!this.#firsts.has(text.charCodeAt(i))) return undefined;
    let node: TrieNode | undefined = this.#root;
    let best: { token: AddedToken; end: number } | undefined;
    for (let j = i; j < text.length; j++) {
      node = node.next.get(text.charCodeAt(j));
      if (!node) break;
      if (node.token) best = { token: node.token, end: j + 1 };
    }
    return best;
  }
}
