/**
 * Byte-level mutators: the damage a file suffers on a bad disk, a cut
 * download or a wrong tool — flipped bits, bytes inserted or lost, a
 * truncation at a boundary, a length field overwritten with 0, a huge
 * number or -1, bytes that are not UTF-8. Every choice comes from the
 * seeded {@link Rng}, so a case replays from its seed.
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";

/** A place in a binary seed that holds an integer (a length, a count, an offset), and its width in bytes. */
export interface IntField {
  /** Byte offset of the field. */
  offset: number;
  /** 4 or 8 bytes, little-endian. */
  size: 4 | 8;
}

/** Byte values that parsers treat specially: NUL, high bit, JSON and CSV syntax, UTF-8 lead bytes. */
const BYTES = [
  0x00,
  0x01,
  0x7f,
  0x80,
  0xff,
  0xfe,
  0x20,
  0x0a,
  0x0d,
  0x22,
  0x2c,
  0x5c,
  0x7b,
  0x7d,
  0x5b,
  0x5d,
  0xc0,
  0xe0,
];

/** Sequences that are not UTF-8: lone continuation, overlong, surrogate, past U+10FFFF, cut short. */
export const INVALID_UTF8: readonly Uint8Array[] = [
  [0x80],
  [0xff],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
].map((b) => new Uint8Array(b));

/**
 * Integers for length and count fields: zero, one, the 32- and 64-bit edges,
 * 2^53 where doubles stop being exact, 2^60 (an allocation that must be
 * refused, not attempted), and -1 read as unsigned.
 */
export const INTERESTING_U64: readonly bigint[] = [
  0n,
  1n,
  2n,
  7n,
  8n,
  255n,
  256n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 60n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

/** `bytes` with `part` put in at `at`. */
function insert(bytes: Uint8Array, at: number, part: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + part.length);
  out.set(bytes.subarray(0, at));
  out.set(part, at);
  out.set(bytes.subarray(at), at + part.length);
  return out;
}

/** `bytes` without [from, to). */
function remove(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(bytes.length - (to - from));
  out.set(bytes.subarray(0, from));
  out.set(bytes.subarray(to), from);
  return out;
}

/**
 * An integer field's new value: an interesting constant, or the old value
 * nudged (±1, doubled, negated), as a little-endian unsigned of `size` bytes.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { interestingInt } from "./mutate_bytes.ts";
 * interestingInt(new Rng(1), 100n, 4) < 2n ** 32n; // true
 * ```
 */
export function interestingInt(rng: Rng, old: bigint, size: 4 | 8): bigint {
  const mask = (1n << BigInt(size * 8)) - 1n;
  const choices = [
    () => pick(rng, INTERESTING_U64),
    () => old + 1n,
    () => old - 1n,
    () => old * 2n,
    () => -old,
    () => old + BigInt(rng.int(-64, 64)),
    () => BigInt(rng.int(0, 0x7fffffff)),
  ];
  return pick(rng, choices)() & mask;
}

/**
 * Overwrites the integer at `field` in place with {@link interestingInt}.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { setIntField } from "./mutate_bytes.ts";
 * const bytes = new Uint8Array(8);
 * setIntField(new Rng(1), bytes, { offset: 0, size: 8 });
 * ```
 */
export function setIntField(rng: Rng, bytes: Uint8Array, field: IntField): void {
  if (field.offset + field.size > bytes.length) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (field.size === 8) {
    view.setBigUint64(field.offset, interestingInt(rng, view.getBigUint64(field.offset, true), 8), true);
  } else {
    view.setUint32(field.offset, Number(interestingInt(rng, BigInt(view.getUint32(field.offset, true)), 4)), true);
  }
}

/** Options of {@link mutateBytes}. */
export interface ByteMutationOptions {
  /** Offsets where a cut or an insertion matters most (field and section boundaries). */
  boundaries?: readonly number[];
  /** Integer fields that may be overwritten with interesting values. */
  fields?: readonly IntField[];
}

/**
 * One byte-level mutation of `bytes` (a fresh array; `bytes` is not changed):
 * a bit flip, a special byte, random or invalid-UTF-8 bytes inserted, a range
 * deleted or duplicated, a truncation (at a boundary when given), or an
 * integer field overwritten.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { mutateBytes } from "./mutate_bytes.ts";
 * mutateBytes(new Rng(7), new TextEncoder().encode('{"a": 1}')).length > 0;
 * ```
 */
export function mutateBytes(rng: Rng, bytes: Uint8Array, options: ByteMutationOptions = {}): Uint8Array {
  const n = bytes.length;
  const at = () => rng.int(0, n);
  const boundary = () => {
    const b = options.boundaries && options.boundaries.length > 0 && rng.next() < 0.7
      ? pick(rng, options.boundaries) + rng.int(-1, 1)
      : at();
    return Math.max(0, Math.min(n, b));
  };
  const op = rng.int(0, 9);
  if (n === 0 || op === 0) {
    return insert(
      bytes,
      boundary(),
      Uint8Array.from({ length: rng.int(1, 16) }, () => rng.int(0, 255)),
    );
  }
  switch (op) {
    case 1: {
      const out = bytes.slice();
      const i = rng.int(0, n - 1);
      out[i] ^= 1 << rng.int(0, 7);
      return out;
    }
    case 2: {
      const out = bytes.slice();
      out[rng.int(0, n - 1)] = pick(rng, BYTES);
      return out;
    }
    case 3:
      return insert(bytes, boundary(), pick(rng, INVALID_UTF8));
    case 4: {
      const from = boundary();
      return remove(bytes, from, Math.min(n, from + rng.int(1, rng.next() < 0.8 ? 8 : 256)));
    }
    case 5: {
      const from = at();
      const to = Math.min(n, from + rng.int(1, 64));
      return insert(bytes, boundary(), bytes.slice(from, to));
    }
    case 6:
    case 7:
      return bytes.slice(0, boundary());
    default: {
      const out = bytes.slice();
      if (options.fields && options.fields.length > 0) setIntField(rng, out, pick(rng, options.fields));
      else setIntField(rng, out, { offset: rng.int(0, Math.max(0, n - 8)), size: rng.next() < 0.5 ? 4 : 8 });
      return out;
    }
  }
}

/**
 * `bytes` cut at each of `offsets` and one byte either side (every offset
 * when none are given), each cut a fresh array: the truncations a file can
 * suffer at the places its reader cares about.
 *
 * @example
 * ```ts
 * import { truncations } from "./mutate_bytes.ts";
 * truncations(new Uint8Array([1, 2, 3]), [1]).map((b) => b.length); // [0, 1, 2]
 * ```
 */
export function truncations(bytes: Uint8Array, offsets?: readonly number[]): Uint8Array[] {
  const at = offsets
    ? [...new Set(offsets.flatMap((o) => [o - 1, o, o + 1]))].filter((o) => o >= 0 && o < bytes.length)
    : Array.from({ length: bytes.length }, (_, i) => i);
  return at.sort((a, b) => a - b).map((o) => bytes.slice(0, o));
}
