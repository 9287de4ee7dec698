/**
 * GPT-2's byte-level alphabet: every byte 0..255 stands for one printable
 * character, so any UTF-8 text becomes a string over 256 symbols that a BPE
 * vocabulary can cover without an unknown token (Llama 3, SmolLM, GPT-2).
 *
 * @module
 */

/**
 * byte -> the character code that spells it (GPT-2's bytes_to_unicode).
 *
 * @example
 * ```ts
 * import { BYTE_TO_CHAR } from "./bytelevel.ts";
 * String.fromCharCode(BYTE_TO_CHAR[0x20]); // "Ġ"
 * ```
 */
export const BYTE_TO_CHAR: Uint16Array = (() => {
  const table = new Uint16Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? b : 256 + shifted++;
  return table;
})();

/** character code -> byte, or -1 where the character is outside the alphabet (codes < 324). */
const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(324).fill(-1);
  for (let b = 0; b < 256; b++) table[BYTE_TO_CHAR[b]] = b;
  return table;
})();

/** byte -> its one-character string. */
const BYTE_STRING: string[] = Array.from(BYTE_TO_CHAR, (c) => String.fromCharCode(c));

/**
 * The UTF-8 bytes of `text` spelled in the byte-level alphabet. Lone
 * surrogates become U+FFFD, as TextEncoder does.
 *
 * @example
 * ```ts
 * import { toByteLevel } from "./bytelevel.ts";
 * toByteLevel(" hé"); // "ĠhÃ©"
 * ```
 */
export function toByteLevel(text: string): string {
  // Printable ASCII spells itself: copy runs of it as slices, map only the rest.
  let out = "";
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0x21 && cp <= 0x7e) continue;
    if (run < i) out += text.slice(run, i);
    if (cp < 0x80) {
      out += BYTE_STRING[cp];
    } else {
      if (cp >= 0xd800 && cp <= 0xdfff) {
        const lo = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (cp <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i++;
        } else {
          cp = 0xfffd;
        }
      }
      if (cp < 0x800) {
        out += BYTE_STRING[0xc0 | (cp >> 6)];
      } else if (cp < 0x10000) {
        out += BYTE_STRING[0xe0 | (cp >> 12)] + BYTE_STRING[0x80 | ((cp >> 6) & 0x3f)];
      } else {
        out += BYTE_STRING[0xf0 | (cp >> 18)] + BYTE_STRING[0x80 | ((cp >> 12) & 0x3f)] +
          BYTE_STRING[0x80 | ((cp >> 6) & 0x3f)];
      }
      out += BYTE_STRING[0x80 | (cp & 0x3f)];
    }
    run = i + 1;
  }
  return run === 0 ? text : run < text.length ? out + text.slice(run) : out;
}

/**
 * Appends the bytes a byte-level token stands for to `out`. A token with any
 * character outside the alphabet (an added token such as one with a plain
 * space) contributes its own UTF-8 bytes instead, as HF's ByteLevel decoder does.
 *
 * @example
 * ```ts
 * import { appendByteLevelBytes } from "./bytelevel.ts";
 * const out: number[] = [];
 * appendByteLevelBytes("ĠhÃ©", out);
 * new TextDecoder().decode(new Uint8Array(out)); // " hé"
 * ```
 */
export function appendByteLevelBytes(token: string, out: number[]): void {
  const start = out.length;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) {
      out.length = start;
      for (const byte of new TextEncoder().encode(token)) out.push(byte);
      return;
    }
    out.push(b);
  }
}
