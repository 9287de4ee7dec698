/**
 * Writes GGUF files from a plain description, for the fuzzer's seeds and its
 * structure-aware mutations (lorac has no GGUF writer of its own). Besides the
 * bytes it returns where every integer field (counts, string and array
 * lengths, type codes, dimensions, offsets) and every section boundary lies,
 * so a byte-level mutator can aim at them.
 *
 * @module
 */

import { GGUF_VALUE_TYPE } from "../../lib/formats/gguf.ts";
import type { IntField } from "./mutate_bytes.ts";

/** Metadata value type codes (gguf_type). */
export const VT = GGUF_VALUE_TYPE;

/** An array value: its element type and items (nested arrays are GgufArraySpec items). */
export interface GgufArraySpec {
  /** Element type code. */
  elem: number;
  /** The elements. */
  items: readonly unknown[];
}

/** One metadata entry. */
export interface GgufKvSpec {
  /** The key. */
  key: string;
  /** Value type code (written as given, even when it does not fit the value). */
  type: number;
  /** A number, bigint, boolean, string or {@link GgufArraySpec}. */
  value: unknown;
}

/** One tensor. */
export interface GgufTensorSpec {
  /** llama.cpp's name. */
  name: string;
  /** ggml dimensions, fastest first. */
  dims: readonly (number | bigint)[];
  /** ggml type id. */
  type: number;
  /** Offset in the data section (default: after the previous tensor, aligned). */
  offset?: number | bigint;
  /** The tensor's bytes. */
  data: Uint8Array;
}

/** A whole file. */
export interface GgufSpec {
  /** "GGUF" unless a test says otherwise. */
  magic?: string;
  /** Format version (3). */
  version: number;
  /** Metadata in file order. */
  kvs: readonly GgufKvSpec[];
  /** Tensors in file order. */
  tensors: readonly GgufTensorSpec[];
  /** Data alignment used for padding (32 unless general.alignment says otherwise). */
  alignment: number;
}

/** Bytes plus the map a mutator aims with. */
export interface BuiltGguf {
  /** The file. */
  bytes: Uint8Array;
  /** Every integer field. */
  fields: IntField[];
  /** The integer fields outside array elements (counts, keys, types, tensor infos). */
  headerFields: IntField[];
  /** Offsets where sections, entries and tensors begin. */
  boundaries: number[];
}

class Writer {
  bytes = new Uint8Array(4096);
  length = 0;
  fields: IntField[] = [];
  /** Fields written while inside an array's elements are not header fields. */
  inArray = 0;
  headerFields: IntField[] = [];
  #view = new DataView(this.bytes.buffer);

  reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  raw(b: Uint8Array) {
    const at = this.reserve(b.length);
    this.bytes.set(b, at);
  }
  u8(v: number) {
    const at = this.reserve(1);
    this.bytes[at] = v;
  }
  field(f: IntField) {
    this.fields.push(f);
    if (this.inArray === 0) this.headerFields.push(f);
  }
  u32(v: number, field = true) {
    const at = this.reserve(4);
    if (field) this.field({ offset: at, size: 4 });
    this.#view.setUint32(at, v >>> 0, true);
  }
  u64(v: number | bigint, field = true) {
    const at = this.reserve(8);
    if (field) this.field({ offset: at, size: 8 });
    this.#view.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
  }
  /** Reserves n bytes, then writes them through the view (reserve may have replaced it). */
  put(n: number, write: (view: DataView, offset: number) => void) {
    const offset = this.reserve(n);
    write(this.#view, offset);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  scalar(type: number, v: unknown) {
    const num = Number(v);
    switch (type) {
      case VT.U8:
      case VT.I8:
      case VT.BOOL:
        return this.u8(num & 255);
      case VT.U16:
      case VT.I16:
        return this.put(2, (view, o) => view.setUint16(o, num & 0xffff, true));
      case VT.U32:
      case VT.I32:
        return this.u32(num, false);
      case VT.F32:
        return this.put(4, (view, o) => view.setFloat32(o, num, true));
      case VT.F64:
        return this.put(8, (view, o) => view.setFloat64(o, num, true));
      case VT.U64:
      case VT.I64:
        return this.u64(typeof v === "bigint" ? v : BigInt(Math.trunc(Number.isFinite(num) ? num : 0)), false);
      case VT.STRING:
        return this.string(String(v));
      default:
        return this.u32(0, false); // an unknown type code: filler the parser must refuse before reading
    }
  }
  arrayHeader(v: unknown): { elem: number; items: readonly unknown[]; i: number } {
    const a = (typeof v === "object" && v !== null && "items" in v ? v : { elem: VT.U8, items: [] }) as GgufArraySpec;
    this.u32(a.elem);
    this.u64(a.items.length);
    return { elem: a.elem, items: a.items, i: 0 };
  }
  /** Writes a value; nested arrays without recursion (a fuzz case nests them thousands deep). */
  value(type: number, v: unknown) {
    if (type !== VT.ARRAY) return this.scalar(type, v);
    const frames = [this.arrayHeader(v)];
    this.inArray++;
    while (frames.length > 0) {
      const f = frames[frames.length - 1];
      if (f.i >= f.items.length) frames.pop();
      else if (f.elem === VT.ARRAY) frames.push(this.arrayHeader(f.items[f.i++]));
      else this.scalar(f.elem, f.items[f.i++]);
    }
    this.inArray--;
  }
}

/**
 * Encodes `spec` as a GGUF file, with the map of its integer fields and boundaries.
 *
 * @example
 * ```ts
 * import { buildGguf, VT } from "./gguf_builder.ts";
 * const { bytes } = buildGguf({
 *   version: 3,
 *   kvs: [{ key: "general.architecture", type: VT.STRING, value: "llama" }],
 *   tensors: [],
 *   alignment: 32,
 * });
 * new TextDecoder().decode(bytes.subarray(0, 4)); // "GGUF"
 * ```
 */
export function buildGguf(spec: GgufSpec): BuiltGguf {
  const w = new Writer();
  const boundaries: number[] = [0];
  w.raw(new TextEncoder().encode(spec.magic ?? "GGUF"));
  w.u32(spec.version);
  w.u64(spec.tensors.length);
  w.u64(spec.kvs.length);
  for (const kv of spec.kvs) {
    boundaries.push(w.length);
    w.string(kv.key);
    w.u32(kv.type);
    w.value(kv.type, kv.value);
  }
  const align = spec.alignment > 0 ? spec.alignment : 32;
  let next = 0;
  const placed: { offset: number; data: Uint8Array }[] = [];
  for (const t of spec.tensors) {
    boundaries.push(w.length);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    const offset = t.offset ?? next;
    w.u64(offset);
    const at = Number(BigInt.asUintN(64, BigInt(offset)));
    if (at < 1 << 24) placed.push({ offset: at, data: t.data });
    next = Math.ceil((Number(offset) + t.data.length) / align) * align;
  }
  const dataStart = Math.ceil(w.length / align) * align;
  w.reserve(dataStart - w.length);
  boundaries.push(dataStart);
  const dataEnd = placed.reduce((end, p) => Math.max(end, p.offset + p.data.length), 0);
  w.reserve(dataEnd);
  for (const p of placed) {
    boundaries.push(dataStart + p.offset);
    w.bytes.set(p.data, dataStart + p.offset);
  }
  return { bytes: w.bytes.slice(0, w.length), fields: w.fields, headerFields: w.headerFields, boundaries };
}
