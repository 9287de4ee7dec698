/**
 * Structure-aware safetensors mutators: the 8-byte header length set to 0,
 * to a huge value or to -1; the JSON header changed where a reader looks
 * (two tensors' data_offsets swapped, an unknown or different dtype, a shape
 * that no longer matches its bytes, offsets off by one or past the end); the
 * data section cut or grown; and byte-level damage aimed at the boundaries
 * between prefix, header, and each tensor's data.
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";
import { INTERESTING_U64, interestingInt, mutateBytes } from "./mutate_bytes.ts";
import { jsonDepth, mutateJson } from "./mutate_json.ts";

/** A file split into its header (as text) and its data section, or null when the prefix does not say. */
function split(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } | null {
  if (bytes.length < 8) return null;
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) return null;
  try {
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + Number(n)));
    if (jsonDepth(text) > 64) return null; // nested deep by an earlier round: too deep to serialize again
    const header = JSON.parse(text);
    if (typeof header !== "object" || header === null || Array.isArray(header)) return null;
    return { header, data: bytes.subarray(8 + Number(n)) };
  } catch {
    return null;
  }
}

/** A file from a header text and data, its length prefix saying `length` (default: the header's). */
function join(header: Uint8Array, data: Uint8Array, length: bigint = BigInt(header.length)): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

const DTYPES = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "F6_E2M3", "F8_E4M3", "f32", "Q4_0", "", "F128"];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

/** One change to a tensor entry of the header, in place. */
function mutateEntry(rng: Rng, header: Record<string, unknown>): void {
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  if (names.length === 0) return;
  const t = header[pick(rng, names)] as Record<string, unknown>;
  if (typeof t !== "object" || t === null) return;
  const offsets = Array.isArray(t.data_offsets) ? [...t.data_offsets] as number[] : [0, 0];
  switch (rng.int(0, 6)) {
    case 0: { // swap two tensors' offsets
      const other = header[pick(rng, names)] as Record<string, unknown>;
      if (typeof other === "object" && other !== null) {
        [t.data_offsets, other.data_offsets] = [other.data_offsets, t.data_offsets];
      }
      return;
    }
    case 1:
      t.dtype = pick(rng, DTYPES);
      return;
    case 2: {
      const shape = Array.isArray(t.shape) ? [...t.shape] : [];
      const i = rng.int(0, shape.length);
      const v = pick(rng, [0, 1, 2, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 60, Number(INTERESTING_U64[rng.int(0, 17)])]);
      if (rng.next() < 0.5 || i === shape.length) shape.splice(i, 0, v);
      else shape[i] = v;
      t.shape = rng.next() < 0.2 ? shape.slice(1) : shape;
      return;
    }
    case 3:
      offsets[rng.int(0, 1)] = Number(
        interestingInt(rng, BigInt(Number.isSafeInteger(offsets[0]) ? offsets[0] : 0), 8),
      );
      t.data_offsets = offsets;
      return;
    case 4:
      t.data_offsets = offsets.map((o) => (typeof o === "number" ? o : 0) + pick(rng, [-1, 1, 0.5, -8]));
      return;
    case 5:
      t.data_offsets = pick(rng, [[offsets[1], offsets[0]], [offsets[0]], [...offsets, 0], null, "0,4", [-4, 0]]);
      return;
    default:
      Object.defineProperty(header, `${pick(rng, names)}${pick(rng, ["", ".copy", "\n", "\u0000"])}`, {
        value: { ...t },
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
}

/**
 * One structure-aware or byte-level mutation of a safetensors file.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { mutateSafetensors } from "./mutate_safetensors.ts";
 * const json = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
 * const file = new Uint8Array(8 + json.length + 4);
 * new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
 * file.set(json, 8);
 * mutateSafetensors(new Rng(1), file).length >= 0;
 * ```
 */
export function mutateSafetensors(rng: Rng, bytes: Uint8Array): Uint8Array {
  const parts = split(bytes);
  const r = rng.next();
  if (parts && r < 0.35) {
    mutateEntry(rng, parts.header);
    if (rng.next() < 0.3) mutateEntry(rng, parts.header);
    return join(new TextEncoder().encode(JSON.stringify(parts.header)), parts.data);
  }
  if (parts && r < 0.6) {
    const header = mutateJson(rng, JSON.stringify(parts.header), rng.int(1, 3));
    return join(header, parts.data);
  }
  if (parts && r < 0.72) {
    // The length prefix lies: 0, off by one, huge, -1.
    const header = new TextEncoder().encode(JSON.stringify(parts.header));
    return join(header, parts.data, interestingInt(rng, BigInt(header.length), 8));
  }
  if (parts && r < 0.8) {
    // The data section cut at a tensor boundary or grown.
    const ends = Object.values(parts.header).flatMap((t) =>
      typeof t === "object" && t !== null && Array.isArray((t as Record<string, unknown>).data_offsets)
        ? ((t as Record<string, unknown>).data_offsets as number[])
        : []
    );
    const header = new TextEncoder().encode(JSON.stringify(parts.header));
    const cut = ends.length > 0 && rng.next() < 0.7
      ? pick(rng, ends) + rng.int(-1, 1)
      : rng.int(0, parts.data.length + 8);
    // Offsets may be huge after earlier rounds: grow by a little at most.
    const data = new Uint8Array(Math.max(0, Math.min(Number.isFinite(cut) ? cut : 0, parts.data.length + 64)));
    data.set(parts.data.subarray(0, data.length));
    return join(header, data);
  }
  const n = bytes.length >= 8 ? Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)) : 0;
  return mutateBytes(rng, bytes, { boundaries: [0, 1, 7, 8, 9, 8 + n], fields: [{ offset: 0, size: 8 }] });
}

/**
 * The offsets where a safetensors file's parts meet: inside the length
 * prefix, the end of the header, and each tensor's first and last byte.
 *
 * @example
 * ```ts
 * import { safetensorsOffsets } from "./mutate_safetensors.ts";
 * const json = new TextEncoder().encode('{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}');
 * const file = new Uint8Array(8 + json.length + 2);
 * new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
 * file.set(json, 8);
 * safetensorsOffsets(file).at(-1) === file.length; // true
 * ```
 */
export function safetensorsOffsets(bytes: Uint8Array): number[] {
  const parts = split(bytes);
  if (!parts) return [...Array(9).keys()];
  const start = bytes.length - parts.data.length;
  const ends = Object.values(parts.header).flatMap((t) =>
    typeof t === "object" && t !== null && Array.isArray((t as Record<string, unknown>).data_offsets)
      ? ((t as Record<string, unknown>).data_offsets as unknown[]).filter((o): o is number => typeof o === "number")
      : []
  );
  return [...Array(9).keys(), start, ...ends.map((e) => start + e)].sort((a, b) => a - b);
}
