/**
 * Some fuzz inputs are two files (an adapter's config and weights, a
 * tokenizer.json and its tokenizer_config.json). They travel, and are kept as
 * regression fixtures, as one byte string: a u32 count, a u32 length per
 * part, then the parts.
 *
 * @module
 */

/**
 * Packs `parts` into one byte string.
 *
 * @example
 * ```ts
 * import { packParts, unpackParts } from "./parts.ts";
 * unpackParts(packParts([new Uint8Array([1]), new Uint8Array([2, 3])])); // [[1], [2, 3]]
 * ```
 */
export function packParts(parts: readonly Uint8Array[]): Uint8Array {
  const total = 4 + 4 * parts.length + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, parts.length, true);
  let at = 4 + 4 * parts.length;
  parts.forEach((p, i) => {
    view.setUint32(4 + 4 * i, p.length, true);
    out.set(p, at);
    at += p.length;
  });
  return out;
}

/**
 * The parts of a byte string made by {@link packParts}.
 *
 * @example
 * ```ts
 * import { packParts, unpackParts } from "./parts.ts";
 * unpackParts(packParts([])).length; // 0
 * ```
 */
export function unpackParts(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const parts: Uint8Array[] = [];
  let at = 4 + 4 * count;
  for (let i = 0; i < count; i++) {
    const n = view.getUint32(4 + 4 * i, true);
    parts.push(bytes.subarray(at, at + n));
    at += n;
  }
  return parts;
}
