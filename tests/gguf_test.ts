import assert from "node:assert/strict";
import {
  GGUF_VALUE_TYPE,
  GgufError,
  GgufFile,
  ggufLlamaConfig,
  GgufLlamaWeights,
  hfLlamaName,
  parseGgufHeader,
  unpermuteQK,
} from "../lib/formats/gguf.ts";
import { DEQUANTIZABLE, dequantize, GGML_TYPES, type GgmlTypeInfo } from "../lib/formats/gguf_quants.ts";
import { f16Table32 } from "../lib/formats/float16.ts";
import { Rng } from "./reference/random.ts";

// ---- A small GGUF writer for hand-built files --------------------------------------------------------------

const VT = GGUF_VALUE_TYPE;

type Kv = { type: number; value: unknown; elem?: number };
interface TensorSpec {
  name: string;
  dims: number[];
  type: number;
  data: Uint8Array;
  offset?: number;
}

class Writer {
  bytes: number[] = [];
  #dv = new DataView(new ArrayBuffer(8));
  #put(n: number) {
    for (let i = 0; i < n; i++) this.bytes.push(this.#dv.getUint8(i));
  }
  u8(v: number) {
    this.bytes.push(v & 255);
  }
  u32(v: number) {
    this.#dv.setUint32(0, v, true);
    this.#put(4);
  }
  u64(v: number | bigint) {
    this.#dv.setBigUint64(0, BigInt(v), true);
    this.#put(8);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    b.forEach((x) => this.u8(x));
  }
  scalar(type: number, v: unknown) {
    const dv = this.#dv;
    const n = v as number;
    switch (type) {
      case VT.U8:
      case VT.I8:
        return this.u8(n);
      case VT.U16:
      case VT.I16:
        dv.setUint16(0, n & 0xffff, true);
        return this.#put(2);
      case VT.U32:
      case VT.I32:
        dv.setUint32(0, n >>> 0, true);
        return this.#put(4);
      case VT.F32:
        dv.setFloat32(0, n, true);
        return this.#put(4);
      case VT.BOOL:
        return this.u8(v ? 1 : 0);
      case VT.STRING:
        return this.string(v as string);
      case VT.U64:
        dv.setBigUint64(0, BigInt(v as number), true);
        return this.#put(8);
      case VT.I64:
        dv.setBigInt64(0, BigInt(v as number), true);
        return this.#put(8);
      case VT.F64:
        dv.setFloat64(0, n, true);
        return this.#put(8);
    }
    this.u32(0); // an unknown type code (invalid-file cases): four filler bytes
  }
  value(kv: Kv) {
    if (kv.type !== VT.ARRAY) return this.scalar(kv.type, kv.value);
    const items = kv.value as unknown[];
    this.u32(kv.elem!);
    this.u64(items.length);
    for (const item of items) this.value(kv.elem === VT.ARRAY ? item as Kv : { type: kv.elem!, value: item });
  }
}

/** Builds a GGUF file: header, metadata, tensor infos, padding to the alignment, data. */
function buildGguf(kv: [string, Kv][], tensors: TensorSpec[], opts: { version?: number; alignment?: number } = {}) {
  const w = new Writer();
  const align = opts.alignment ?? 32;
  "GGUF".split("").forEach((c) => w.u8(c.charCodeAt(0)));
  w.u32(opts.version ?? 3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [key, value] of kv) {
    w.string(key);
    w.u32(value.type);
    w.value(value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(t.offset ?? offset);
    offset = Math.ceil(((t.offset ?? offset) + t.data.length) / align) * align;
  }
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    t.dims.forEach((d) => w.u64(d));
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  while (w.bytes.length % align !== 0) w.u8(0);
  const start = w.bytes.length;
  const end = Math.max(0, ...tensors.map((t, i) => offsets[i] + t.data.length));
  const out = new Uint8Array(start + end);
  out.set(w.bytes);
  tensors.forEach((t, i) => out.set(t.data, start + offsets[i]));
  return out;
}

async function withFile<T>(bytes: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await Deno.writeFile(path, bytes);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

const type = (name: string): GgmlTypeInfo => [...GGML_TYPES.values()].find((t) => t.name === name)!;

// ---- Plain float64 references of the block formats (one element at a time) ---------------------------------

function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1, exp = (bits >> 10) & 31, mant = bits & 1023;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
const i8 = (b: number) => (b > 127 ? b - 256 : b);
const h16 = (b: Uint8Array, o: number) => f16(b[o] | (b[o + 1] << 8));

/** Element e of a block starting at byte o, per ggml's block layouts. */
const REFERENCE: Record<string, (b: Uint8Array, o: number, e: number) => number> = {
  F32: (b, o) => new DataView(b.buffer, b.byteOffset).getFloat32(o, true),
  F16: (b, o) => h16(b, o),
  BF16: (b, o) => new Float32Array(new Uint32Array([(b[o] | (b[o + 1] << 8)) << 16]).buffer)[0],
  Q8_0: (b, o, e) => h16(b, o) * i8(b[o + 2 + e]),
  Q4_0: (b, o, e) => h16(b, o) * ((e < 16 ? b[o + 2 + e] & 15 : b[o + 2 + e - 16] >> 4) - 8),
  Q4_1: (b, o, e) => h16(b, o) * (e < 16 ? b[o + 4 + e] & 15 : b[o + 4 + e - 16] >> 4) + h16(b, o + 2),
  Q4_K: (b, o, e) => {
    const [sc, m] = scaleMinK(b, o + 4, e >> 5);
    const byte = b[o + 16 + 32 * (e >> 6) + (e & 31)];
    return h16(b, o) * sc * ((e >> 5) % 2 === 0 ? byte & 15 : byte >> 4) - h16(b, o + 2) * m;
  },
  Q5_K: (b, o, e) => {
    const s = e >> 5;
    const [sc, m] = scaleMinK(b, o + 4, s);
    const byte = b[o + 48 + 32 * (e >> 6) + (e & 31)];
    const high = (b[o + 16 + (e & 31)] >> s) & 1;
    return h16(b, o) * sc * ((s % 2 === 0 ? byte & 15 : byte >> 4) + 16 * high) - h16(b, o + 2) * m;
  },
  Q6_K: (b, o, e) => {
    const n = e >> 7, r = e & 127, k = r >> 5, l = r & 31;
    const lowByte = b[o + 64 * n + l + (k % 2) * 32];
    const low = k < 2 ? lowByte & 15 : lowByte >> 4;
    const high = (b[o + 128 + 32 * n + l] >> (2 * k)) & 3;
    return h16(b, o + 208) * i8(b[o + 192 + 8 * n + (r >> 4)]) * ((low | (high << 4)) - 32);
  },
};

/** The 6-bit scale and min of sub-block s from the 12 packed bytes at o. */
function scaleMinK(b: Uint8Array, o: number, s: number): [number, number] {
  if (s < 4) return [b[o + s] & 63, b[o + s + 4] & 63];
  return [(b[o + s + 4] & 15) | ((b[o + s - 4] >> 6) << 4), (b[o + s + 4] >> 4) | ((b[o + s] >> 6) << 4)];
}

function referenceDequantize(t: GgmlTypeInfo, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = REFERENCE[t.name](bytes, Math.floor(i / t.blockSize) * t.typeSize, i % t.blockSize);
  }
  return out;
}

/** A random finite f16 over the whole exponent range (subnormals included). */
function randomF16(rng: Rng): number {
  return (rng.int(0, 1) << 15) | (rng.int(0, 30) << 10) | rng.int(0, 1023);
}

/** Random blocks of `t`: random codes, finite random f16 scales. */
function randomBlocks(rng: Rng, t: GgmlTypeInfo, nBlocks: number): Uint8Array {
  const b = new Uint8Array(nBlocks * t.typeSize);
  for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
  const setF16 = (o: number) => {
    const h = randomF16(rng);
    b[o] = h & 255;
    b[o + 1] = h >> 8;
  };
  for (let k = 0; k < nBlocks; k++) {
    const o = k * t.typeSize;
    if (t.name === "F32") new DataView(b.buffer).setFloat32(o, rng.normal() * 10 ** rng.int(-30, 30), true);
    if (["F16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K"].includes(t.name)) setF16(o);
    if (["Q4_1", "Q4_K", "Q5_K"].includes(t.name)) setF16(o + 2);
    if (t.name === "Q6_K") setF16(o + 208);
  }
  return b;
}

function firstMismatch(got: Float32Array, want: Float32Array): number {
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) return i;
  return -1;
}

// ---- Dequantization ------------------------------------------------------------------------------------------

Deno.test("gguf quants: every supported type equals the plain reference bit for bit on random blocks", async (t) => {
  const rng = new Rng();
  for (const name of DEQUANTIZABLE) {
    await t.step(name, () => {
      const ty = type(name);
      const nBlocks = ty.blockSize === 1 ? 1037 : 7;
      const n = nBlocks * ty.blockSize;
      const bytes = randomBlocks(rng, ty, nBlocks);
      const got = dequantize(ty, bytes, new Float32Array(n).fill(NaN), n);
      const want = referenceDequantize(ty, bytes, n);
      const i = firstMismatch(got, want);
      assert.equal(i, -1, `${name} element ${i}: ${got[i]} vs reference ${want[i]} (seed ${rng.seed})`);
      // A view at an odd byte offset (rows of a tensor) reads the same.
      const shifted = new Uint8Array(bytes.length + 1);
      shifted.set(bytes, 1);
      assert.equal(
        firstMismatch(dequantize(ty, shifted.subarray(1), new Float32Array(n), n), want),
        -1,
        `${name} offset view`,
      );
    });
  }
});

Deno.test("gguf quants: hand-made blocks give the values ggml's formats define", () => {
  const block = (size: number, set: Record<number, number>) => {
    const b = new Uint8Array(size);
    for (const [i, v] of Object.entries(set)) b[Number(i)] = v;
    return b;
  };
  const cases: { name: string; bytes: Uint8Array; want: Record<number, number> }[] = [
    // Q8_0: d = 0.5 (f16 0x3800); codes are int8.
    { name: "Q8_0", bytes: block(34, { 1: 0x38, 2: 3, 3: 200 }), want: { 0: 1.5, 1: -28, 2: 0 } },
    // Q4_0: d = 2; the low nibbles are elements 0..15, the high ones 16..31, minus 8.
    { name: "Q4_0", bytes: block(18, { 1: 0x40, 2: 0x1f }), want: { 0: 14, 16: -14, 1: -16 } },
    // Q4_1: d = 1, min = -1.
    { name: "Q4_1", bytes: block(20, { 1: 0x3c, 3: 0xbc, 4: 0x52 }), want: { 0: 1, 16: 4, 1: -1 } },
    // Q4_K: d = dmin = 1; sub-block 0 has scale 3 and min 2; sub-block 1 (high nibbles) scale 5, min 0.
    {
      name: "Q4_K",
      bytes: block(144, { 1: 0x3c, 3: 0x3c, 4: 3, 5: 5, 8: 2, 16: 0x75 }),
      want: { 0: 13, 32: 35, 1: -2 },
    },
    // Q5_K: as Q4_K plus the fifth bit from qh (bit 0 for sub-block 0).
    { name: "Q5_K", bytes: block(176, { 1: 0x3c, 3: 0x3c, 4: 3, 8: 2, 16: 1, 48: 0x05 }), want: { 0: 61, 1: -2 } },
    // Q6_K: d = 1, scale[0] = -2; low nibble 15 and high bits 1 make q = 31 - 32 = -1.
    { name: "Q6_K", bytes: block(210, { 209: 0x3c, 192: 0xfe, 0: 0x0f, 128: 1 }), want: { 0: 2, 1: 64 } },
  ];
  for (const c of cases) {
    const ty = type(c.name);
    const out = dequantize(ty, c.bytes, new Float32Array(ty.blockSize), ty.blockSize);
    for (const [i, v] of Object.entries(c.want)) assert.equal(out[Number(i)], v, `${c.name}[${i}]`);
  }
});

Deno.test("gguf quants: unsupported types and short buffers are refused by name", () => {
  assert.throws(
    () => dequantize(type("Q5_0"), new Uint8Array(22), new Float32Array(32), 32),
    /cannot dequantize ggml type Q5_0/,
  );
  assert.throws(
    () => dequantize(type("Q4_K"), new Uint8Array(100), new Float32Array(256), 256),
    /need 144 bytes, got 100/,
  );
  assert.throws(() => dequantize(type("Q8_0"), new Uint8Array(34), new Float32Array(32), 31), /not whole Q8_0 blocks/);
  assert.equal(f16Table32()[0x7c00], Infinity);
});

// ---- File structure ------------------------------------------------------------------------------------------

Deno.test("gguf: metadata of every value type, arrays and nested arrays included, reads back", async () => {
  const kv: [string, Kv][] = [
    ["general.architecture", { type: VT.STRING, value: "llama" }],
    ["u8", { type: VT.U8, value: 200 }],
    ["i8", { type: VT.I8, value: -100 }],
    ["u16", { type: VT.U16, value: 65000 }],
    ["i16", { type: VT.I16, value: -30000 }],
    ["u32", { type: VT.U32, value: 4000000000 }],
    ["i32", { type: VT.I32, value: -2000000000 }],
    ["f32", { type: VT.F32, value: 1.5 }],
    ["bool", { type: VT.BOOL, value: true }],
    ["string", { type: VT.STRING, value: "héllo ✓ 🦙" }],
    ["u64.small", { type: VT.U64, value: 12345 }],
    ["u64.big", { type: VT.U64, value: 1n << 60n }],
    ["i64", { type: VT.I64, value: -5 }],
    ["f64", { type: VT.F64, value: 0.1 }],
    ["tokens", { type: VT.ARRAY, elem: VT.STRING, value: ["<s>", "Ġthe", "é"] }],
    ["scores", { type: VT.ARRAY, elem: VT.F32, value: [0.5, -1] }],
    ["types", { type: VT.ARRAY, elem: VT.I32, value: [1, -3] }],
    ["flags", { type: VT.ARRAY, elem: VT.BOOL, value: [true, false] }],
    ["nested", { type: VT.ARRAY, elem: VT.ARRAY, value: [{ type: VT.ARRAY, elem: VT.U16, value: [1, 2] }] }],
    ["empty", { type: VT.ARRAY, elem: VT.U32, value: [] }],
  ];
  const bytes = buildGguf(kv, [{
    name: "w",
    dims: [3],
    type: 0,
    data: new Uint8Array(new Float32Array([1, 2, 3]).buffer),
  }]);
  await withFile(bytes, async (path) => {
    using f = await GgufFile.open(path);
    const m = f.metadata;
    assert.equal(f.version, 3);
    assert.deepEqual([...m.keys()], kv.map(([k]) => k));
    assert.equal(m.get("u8"), 200);
    assert.equal(m.get("i8"), -100);
    assert.equal(m.get("u16"), 65000);
    assert.equal(m.get("i16"), -30000);
    assert.equal(m.get("u32"), 4000000000);
    assert.equal(m.get("i32"), -2000000000);
    assert.equal(m.get("f32"), 1.5);
    assert.equal(m.get("bool"), true);
    assert.equal(m.get("string"), "héllo ✓ 🦙");
    assert.equal(m.get("u64.small"), 12345);
    assert.equal(m.get("u64.big"), 1n << 60n);
    assert.equal(m.get("i64"), -5);
    assert.equal(m.get("f64"), 0.1);
    assert.deepEqual(m.get("tokens"), ["<s>", "Ġthe", "é"]);
    assert.deepEqual(m.get("scores"), new Float32Array([0.5, -1]));
    assert.deepEqual(m.get("types"), new Int32Array([1, -3]));
    assert.deepEqual(m.get("flags"), [true, false]);
    assert.deepEqual(m.get("nested"), [new Uint16Array([1, 2])]);
    assert.deepEqual(m.get("empty"), new Uint32Array(0));
    assert.deepEqual(await f.readFloat32("w"), new Float32Array([1, 2, 3]));
  });
});

Deno.test("gguf: tensor infos, general.alignment and version 2 place the data where llama.cpp does", async () => {
  const rng = new Rng();
  for (const [version, alignment] of [[3, 32], [2, 32], [3, 64], [3, 16]]) {
    const q = randomBlocks(rng, type("Q4_K"), 3);
    const h = randomBlocks(rng, type("F16"), 7 * 5);
    const kv: [string, Kv][] = alignment === 32 ? [] : [["general.alignment", { type: VT.U32, value: alignment }]];
    const bytes = buildGguf(kv, [
      { name: "a", dims: [256, 3], type: 12, data: q },
      { name: "b", dims: [7, 5], type: 1, data: h },
    ], { version, alignment });
    await withFile(bytes, async (path) => {
      using f = await GgufFile.open(path);
      assert.equal(f.alignment, alignment);
      assert.equal(f.dataOffset % alignment, 0);
      const a = f.info("a"), b = f.info("b");
      assert.deepEqual([a.dims, a.shape, a.numel, a.byteLength], [[256, 3], [3, 256], 768, 432]);
      assert.deepEqual([b.dims, b.shape, b.type.name], [[7, 5], [5, 7], "F16"]);
      assert.equal(b.offset % alignment, 0);
      assert.deepEqual(await f.readBytes("a"), q);
      const got = await f.readFloat32("b");
      assert.equal(firstMismatch(got, referenceDequantize(type("F16"), h, 35)), -1, `v${version} align ${alignment}`);
    });
  }
});

Deno.test("gguf: a header split across the first read is still parsed (more is read until it fits)", () => {
  const bytes = buildGguf([["k", { type: VT.STRING, value: "x".repeat(100) }]], []);
  assert.equal(parseGgufHeader("f.gguf", bytes.subarray(0, 50), bytes.length), null);
  assert.equal(parseGgufHeader("f.gguf", bytes, bytes.length)?.metadata.get("k"), "x".repeat(100));
});

const f32Bytes = (n: number) => new Uint8Array(4 * n);
const INVALID: { what: string; bytes: () => Uint8Array; error: RegExp }[] = [
  {
    what: "bad magic",
    bytes: () => new TextEncoder().encode("GGML" + "\0".repeat(40)),
    error: /starts with "GGML", not "GGUF"/,
  },
  { what: "version 1", bytes: () => buildGguf([], [], { version: 1 }), error: /GGUF version 1 .* is obsolete/ },
  { what: "version 4", bytes: () => buildGguf([], [], { version: 4 }), error: /GGUF version 4 is not supported/ },
  { what: "big-endian", bytes: () => buildGguf([], [], { version: 0x03000000 }), error: /big-endian GGUF/ },
  {
    what: "truncated metadata",
    bytes: () => buildGguf([["k", { type: VT.STRING, value: "abcdef" }]], []).subarray(0, 40),
    error: /runs past the end of the file: truncated/,
  },
  {
    what: "unknown value type",
    bytes: () => buildGguf([["k", { type: 13, value: 0 }]], []),
    error: /metadata "k" has unknown value type 13/,
  },
  {
    what: "duplicate key",
    bytes: () => buildGguf([["k", { type: VT.U8, value: 1 }], ["k", { type: VT.U8, value: 2 }]], []),
    error: /metadata key "k" appears twice/,
  },
  {
    what: "bad alignment",
    bytes: () => buildGguf([["general.alignment", { type: VT.U32, value: 24 }]], []),
    error: /general.alignment must be a positive power of two, got 24/,
  },
  {
    what: "unknown tensor type",
    bytes: () => buildGguf([], [{ name: "w", dims: [4], type: 99, data: f32Bytes(4) }]),
    error: /"w" has unknown ggml type 99/,
  },
  {
    what: "too many dims",
    bytes: () => buildGguf([], [{ name: "w", dims: [1, 1, 1, 1, 1], type: 0, data: f32Bytes(1) }]),
    error: /"w" has 5 dimensions/,
  },
  {
    what: "row not whole blocks",
    bytes: () => buildGguf([], [{ name: "w", dims: [48, 2], type: 8, data: new Uint8Array(68) }]),
    error: /row length 48 is not a multiple of the Q8_0 block size 32/,
  },
  {
    what: "misaligned offset",
    bytes: () => buildGguf([], [{ name: "w", dims: [4], type: 0, data: f32Bytes(4), offset: 8 }]),
    error: /"w" offset 8 is not a multiple of the alignment 32/,
  },
  {
    what: "tensor past the end",
    bytes: () => buildGguf([], [{ name: "w", dims: [64], type: 0, data: f32Bytes(64) }]).subarray(0, 100),
    error: /"w" \(bytes 0..256 of the data\) runs past the end/,
  },
  {
    what: "overlapping tensors",
    bytes: () =>
      buildGguf([], [
        { name: "a", dims: [16], type: 0, data: f32Bytes(16), offset: 0 },
        { name: "b", dims: [16], type: 0, data: f32Bytes(16), offset: 32 },
      ]),
    error: /tensors "a" and "b" overlap/,
  },
  {
    what: "duplicate tensor",
    bytes: () =>
      buildGguf([], [{ name: "a", dims: [8], type: 0, data: f32Bytes(8) }, {
        name: "a",
        dims: [8],
        type: 0,
        data: f32Bytes(8),
      }]),
    error: /tensor "a" appears twice/,
  },
];

Deno.test("gguf: malformed files are refused with the file and the problem named", async (t) => {
  for (const c of INVALID) {
    await t.step(c.what, async () => {
      await withFile(c.bytes(), async (path) => {
        const err = await GgufFile.open(path).then((f) => (f.close(), null), (e) => e);
        assert.ok(err instanceof GgufError, `${c.what}: expected a GgufError, got ${err}`);
        assert.ok(err.message.startsWith(`${path}: `), err.message);
        assert.match(err.message, c.error);
      });
    });
  }
});

// ---- The Llama view ------------------------------------------------------------------------------------------

Deno.test("gguf: llama.cpp tensor names map to the HF Llama layout", () => {
  const cases: [string, string | null][] = [
    ["token_embd.weight", "model.embed_tokens.weight"],
    ["output_norm.weight", "model.norm.weight"],
    ["output.weight", "lm_head.weight"],
    ["blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"],
    ["blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"],
    ["blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"],
    ["blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight"],
    ["blk.1.attn_output.weight", "model.layers.1.self_attn.o_proj.weight"],
    ["blk.29.ffn_norm.weight", "model.layers.29.post_attention_layernorm.weight"],
    ["blk.2.ffn_gate.weight", "model.layers.2.mlp.gate_proj.weight"],
    ["blk.2.ffn_up.weight", "model.layers.2.mlp.up_proj.weight"],
    ["blk.2.ffn_down.weight", "model.layers.2.mlp.down_proj.weight"],
    ["rope_freqs.weight", null],
    ["blk.0.attn_qkv.weight", null],
    ["blk.0.attn_q.bias", null],
  ];
  for (const [gguf, hf] of cases) assert.equal(hfLlamaName(gguf), hf, gguf);
});

/** llama.cpp's convert_hf_to_gguf `permute`: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2). */
function llamaCppPermute(w: Float32Array, nHead: number, cols: number): Float32Array {
  const rows = w.length / cols, half = rows / nHead / 2;
  const out = new Float32Array(w.length);
  let dst = 0;
  for (let h = 0; h < nHead; h++) {
    for (let a = 0; a < half; a++) {
      for (let b = 0; b < 2; b++) {
        const src = ((h * 2 + b) * half + a) * cols;
        out.set(w.subarray(src, src + cols), dst);
        dst += cols;
      }
    }
  }
  return out;
}

Deno.test("gguf: unpermuteQK inverts llama.cpp's permute for MHA and GQA shapes", () => {
  const rng = new Rng();
  for (const [nHead, headDim, cols] of [[1, 2, 1], [3, 6, 5], [9, 64, 7], [4, 10, 3]]) {
    const w = rng.normals(nHead * headDim * cols);
    const back = unpermuteQK(llamaCppPermute(w, nHead, cols), nHead, cols);
    assert.deepEqual(back, w, `heads ${nHead} x ${headDim}, ${cols} columns, seed ${rng.seed}`);
  }
  assert.throws(() => unpermuteQK(new Float32Array(12), 2, 2), /6 rows do not split into 2 heads of an even size/);
});

/** A tiny Llama GGUF as llama.cpp writes one: permuted Q/K, GQA, tied embeddings, tokenizer metadata. */
function tinyLlama(rng: Rng, extra: { kv?: [string, Kv][]; tensors?: TensorSpec[] } = {}) {
  const hidden = 32, heads = 4, kvHeads = 2, headDim = 8, ffn = 64, vocab = 10;
  const f32 = (w: Float32Array) => new Uint8Array(w.buffer.slice(0));
  const q = rng.normals(heads * headDim * hidden), k = rng.normals(kvHeads * headDim * hidden);
  const v = rng.normals(kvHeads * headDim * hidden);
  const embd = randomBlocks(rng, type("Q8_0"), (vocab * hidden) / 32);
  const kv: [string, Kv][] = [
    ["general.architecture", { type: VT.STRING, value: "llama" }],
    ["llama.block_count", { type: VT.U32, value: 1 }],
    ["llama.context_length", { type: VT.U32, value: 256 }],
    ["llama.embedding_length", { type: VT.U32, value: hidden }],
    ["llama.feed_forward_length", { type: VT.U32, value: ffn }],
    ["llama.attention.head_count", { type: VT.U32, value: heads }],
    ["llama.attention.head_count_kv", { type: VT.U32, value: kvHeads }],
    ["llama.rope.freq_base", { type: VT.F32, value: 100000 }],
    ["llama.attention.layer_norm_rms_epsilon", { type: VT.F32, value: 2 ** -17 }],
    ["llama.rope.dimension_count", { type: VT.U32, value: headDim }],
    ["tokenizer.ggml.tokens", {
      type: VT.ARRAY,
      elem: VT.STRING,
      value: Array.from({ length: vocab }, (_, i) => `t${i}`),
    }],
    ["tokenizer.ggml.bos_token_id", { type: VT.U32, value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: VT.U32, value: 2 }],
    ...(extra.kv ?? []),
  ];
  const tensors: TensorSpec[] = [
    { name: "token_embd.weight", dims: [hidden, vocab], type: 8, data: embd },
    { name: "blk.0.attn_norm.weight", dims: [hidden], type: 0, data: f32(rng.normals(hidden)) },
    {
      name: "blk.0.attn_q.weight",
      dims: [hidden, heads * headDim],
      type: 0,
      data: f32(llamaCppPermute(q, heads, hidden)),
    },
    {
      name: "blk.0.attn_k.weight",
      dims: [hidden, kvHeads * headDim],
      type: 0,
      data: f32(llamaCppPermute(k, kvHeads, hidden)),
    },
    { name: "blk.0.attn_v.weight", dims: [hidden, kvHeads * headDim], type: 0, data: f32(v) },
    { name: "output_norm.weight", dims: [hidden], type: 0, data: f32(rng.normals(hidden)) },
    ...(extra.tensors ?? []),
  ];
  return { bytes: buildGguf(kv, tensors), q, k, v, embd };
}

Deno.test("gguf: a Llama GGUF reads as an HF checkpoint: config, names, un-permuted Q/K", async () => {
  const rng = new Rng();
  const { bytes, q, k, v, embd } = tinyLlama(rng);
  await withFile(bytes, async (path) => {
    using w = await GgufLlamaWeights.open(path);
    assert.deepEqual(w.config, {
      architecture: "LlamaForCausalLM",
      hiddenSize: 32,
      numLayers: 1,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      intermediateSize: 64,
      vocabSize: 10,
      rmsNormEps: 2 ** -17,
      ropeTheta: 100000,
      ropeScaling: { type: "none" },
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenIds: [2],
      padTokenId: null,
      maxPositionEmbeddings: 256,
    });
    assert.deepEqual(w.names(), [
      "model.embed_tokens.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.norm.weight",
    ]);
    assert.deepEqual(w.info("model.layers.0.self_attn.k_proj.weight").shape, [16, 32]);
    assert.deepEqual(await w.readFloat32("model.layers.0.self_attn.q_proj.weight"), q, `seed ${rng.seed}`);
    assert.deepEqual(await w.readFloat32("model.layers.0.self_attn.k_proj.weight"), k, `seed ${rng.seed}`);
    assert.deepEqual(await w.readFloat32("model.layers.0.self_attn.v_proj.weight"), v, `seed ${rng.seed}`);
    const e = await w.readFloat32("model.embed_tokens.weight");
    assert.equal(firstMismatch(e, referenceDequantize(type("Q8_0"), embd, 320)), -1);
  });
});

Deno.test("gguf: rope_freqs becomes frequency_factors; other architectures and strange tensors are refused", async (t) => {
  const rng = new Rng();
  await t.step("rope_freqs", async () => {
    const factors = new Float32Array([1, 1, 2.5, 8]);
    const { bytes } = tinyLlama(rng, {
      tensors: [{ name: "rope_freqs.weight", dims: [4], type: 0, data: new Uint8Array(factors.buffer) }],
    });
    await withFile(bytes, async (path) => {
      using f = await GgufFile.open(path);
      assert.deepEqual((await ggufLlamaConfig(f)).ropeScaling, { type: "frequency_factors", factors });
    });
  });
  await t.step("linear scaling", async () => {
    const { bytes } = tinyLlama(rng, {
      kv: [["llama.rope.scaling.type", { type: VT.STRING, value: "linear" }], ["llama.rope.scaling.factor", {
        type: VT.F32,
        value: 4,
      }]],
    });
    await withFile(bytes, async (path) => {
      using f = await GgufFile.open(path);
      assert.deepEqual((await ggufLlamaConfig(f)).ropeScaling, { type: "linear", factor: 4 });
    });
  });
  const refused: [string, { kv?: [string, Kv][]; tensors?: TensorSpec[] }, RegExp][] = [
    [
      "yarn scaling",
      { kv: [["llama.rope.scaling.type", { type: VT.STRING, value: "yarn" }]] },
      /llama.rope.scaling.type "yarn" is not supported/,
    ],
    [
      "a fused QKV tensor",
      { tensors: [{ name: "blk.0.attn_qkv.weight", dims: [4], type: 0, data: f32Bytes(4) }] },
      /tensors with no Llama counterpart: blk.0.attn_qkv.weight/,
    ],
  ];
  for (const [what, extra, error] of refused) {
    await t.step(what, async () => {
      await withFile(tinyLlama(rng, extra).bytes, async (path) => {
        await assert.rejects(GgufLlamaWeights.open(path), error);
      });
    });
  }
  await t.step("a non-llama architecture", async () => {
    const bytes = buildGguf([["general.architecture", { type: VT.STRING, value: "qwen2" }]], []);
    await withFile(bytes, async (path) => {
      await assert.rejects(
        GgufLlamaWeights.open(path),
        /general.architecture is "qwen2"; lorac reads Llama-family GGUFs/,
      );
    });
  });
});
