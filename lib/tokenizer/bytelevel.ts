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

let scratch = new Uint16Array(256);

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
  if (scratch.length < text.length * 3) scratch = new Uint16Array(text.length * 3);
  const out = scratch;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out[n++] = BYTE_TO_CHAR[cp];
      continue;
    }
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
      out[n++] = BYTE_TO_CHAR[0xc0 | (cp >> 6)];
    } else if (cp < 0x10000) {
      out[n++] = BYTE_TO_CHAR[0xe0 | (cp >> 12)];
      out[n++] = BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)];
    } else {
      out[n++] = BYTE_TO_CHAR[0xf0 | (cp >> 18)];
      out[n++] = BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3f)];
      out[n++] = BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)];
    }
    out[n++] = BYTE_TO_CHAR[0x80 | (cp & 0x3f)];
  }
  return fromCodes(out, n);
}

/** String.fromCharCode over out[0..n), in chunks that stay below the engine's argument limit. */
function fromCodes(codes: Uint16Array, n: number): string {
  const chunk = 8192;
  if (n <= chunk) return String.fromCharCode.apply(null, codes.subarray(0, n) as unknown as number[]);
  let s = "";
  for (let i = 0; i < n; i += chunk) {
    s += String.fromCharCode.apply(null, codes.subarray(i, Math.min(n, i + chunk)) as unknown as number[]);
  }
  return s;
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
