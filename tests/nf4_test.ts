import assert from "node:assert/strict";
import { type Backend, KernelError, openBackend } from "../lib/backend/backend.ts";
import { dtypeCode, fromBf16, toBf16 } from "../lib/backend/dtype.ts";
import { nf4Dequantize, nf4DoubleDequantize, nf4DoubleQuantize, nf4Quantize } from "../lib/backend/nf4.ts";
import { poison, poisonBf16 } from "./reference/compare.ts";
import {
  DYNAMIC_MAP,
  NF4_CODE,
  NF4_MIDPOINTS,
  nf4DequantizeRef,
  nf4DoubleDequantizeRef,
  nf4DoubleQuantizeRef,
  nf4QuantizeRef,
  torchSumF32,
} from "./reference/nf4.ts";
import { Rng } from "./reference/random.ts";

type Float = "f32" | "bf16";

const POISON_BYTE = 0xab;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Raw bits, so that NaN, -0 and subnormals compare exactly. */
function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

function f32FromBits(...u: number[]): Float32Array {
  return new Float32Array(new Uint32Array(u).buffer);
}

/** The values a dtype can hold: bf16 rounds. */
function exact(values: Float32Array, dtype: Float): Float32Array {
  return dtype === "f32" ? values : fromBf16(toBf16(values));
}

/** lorac_nf4_quantize into poisoned outputs; returns host copies. */
function quantize(backend: Backend, values: Float32Array, dtype: Float, blocksize: number) {
  const n = values.length;
  using w = dtype === "f32" ? backend.fromHost(values, [n], "f32") : backend.fromHost(toBf16(values), [n], "bf16");
  using packed = backend.fromHost(new Uint8Array(Math.ceil(n / 2)).fill(POISON_BYTE), [n], "nf4");
  using absmax = backend.fromHost(poison(Math.ceil(n / blocksize)), [Math.ceil(n / blocksize)], "f32");
  backend.check(backend.lib.symbols.lorac_nf4_quantize(
    backend.ctx,
    w.ptr,
    dtypeCode[dtype],
    BigInt(n),
    blocksize,
    packed.ptr,
    absmax.ptr,
  ));
  return { packed: packed.toHost(), absmax: absmax.toHost() };
}

/** lorac_nf4_dequantize into a poisoned output; returns it as f32. */
function dequantize(backend: Backend, packed: Uint8Array, absmax: Float32Array, n: number, bs: number, out: Float) {
  using p = backend.fromHost(packed, [n], "nf4");
  using a = backend.fromHost(absmax, [absmax.length], "f32");
  using o = out === "f32" ? backend.fromHost(poison(n), [n], "f32") : backend.fromHost(poisonBf16(n), [n], "bf16");
  backend.check(backend.lib.symbols.lorac_nf4_dequantize(
    backend.ctx,
    p.ptr,
    a.ptr,
    BigInt(n),
    bs,
    o.ptr,
    dtypeCode[out],
  ));
  const host = o.toHost();
  return host instanceof Float32Array ? host : fromBf16(host as Uint16Array);
}

/** lorac_nf4_double_quantize and its inverse into poisoned outputs. */
function doubleQuantize(backend: Backend, absmax: Float32Array) {
  const n = absmax.length;
  const n2 = Math.ceil(n / 256);
  using a = backend.fromHost(absmax, [n], "f32");
  using q = backend.fromHost(new Uint8Array(n).fill(POISON_BYTE), [n], "u8");
  using a2 = backend.fromHost(poison(n2), [n2], "f32");
  using offset = backend.fromHost(poison(1), [1], "f32");
  using back = backend.fromHost(poison(n), [n], "f32");
  const s = backend.lib.symbols;
  backend.check(s.lorac_nf4_double_quantize(backend.ctx, a.ptr, BigInt(n), q.ptr, a2.ptr, offset.ptr));
  backend.check(s.lorac_nf4_double_dequantize(backend.ctx, q.ptr, a2.ptr, offset.ptr, BigInt(n), back.ptr));
  return { qabsmax: q.toHost(), absmax2: a2.toHost(), offset: offset.toHost()[0], back: back.toHost() };
}

// ---- quantize ------------------------------------------------------------------

const nextUp = (x: number) => {
  const u = new Float32Array([x]);
  const b = new Int32Array(u.buffer);
  b[0] += x >= 0 ? 1 : -1;
  return u[0];
};
// A full block [a, x, 0…] and a partial block [a, x] where x·fl(1/a) and x/a fall on
// either side of an NF4 midpoint (found by search against bitsandbytes 0.50.2).
const [a, x] = f32FromBits(0x3f0ecf0b, 0xbe8361f9);

const handCases: { name: string; w: number[]; dtype: Float; bs: number; packed: string; absmax: Float32Array }[] = [
  {
    name: "each code once per 16 elements, the first element in the high nibble",
    w: Array.from({ length: 64 }, (_, i) => NF4_CODE[i % 16] * 2),
    dtype: "f32",
    bs: 64,
    packed: "0123456789abcdef".repeat(4),
    absmax: new Float32Array([2]),
  },
  {
    name: "a value exactly on a midpoint takes the lower code, one ulp above the upper",
    w: [1, ...NF4_MIDPOINTS, ...NF4_MIDPOINTS.map(nextUp), ...new Array(33).fill(0)],
    dtype: "f32",
    bs: 64,
    packed: "f0123456789abcde" + "123456789abcdef7" + "77".repeat(16),
    absmax: new Float32Array([1]),
  },
  {
    name: "zero blocks: a full one stores absmax 0, the partial last one 1e-38",
    w: new Array(101).fill(0),
    dtype: "f32",
    bs: 64,
    packed: "77".repeat(51),
    absmax: new Float32Array([0, 1e-38]),
  },
  {
    name: "odd n pads the last low nibble with the code of 0.0",
    w: [1, -1, 0],
    dtype: "f32",
    bs: 64,
    packed: "f077",
    absmax: new Float32Array([1]),
  },
  {
    name: "bf16 input",
    w: [-3, 0.5, 3, -0.25, 0],
    dtype: "bf16",
    bs: 128,
    packed: "09f677",
    absmax: new Float32Array([3]),
  },
  {
    name: "full blocks multiply by the reciprocal, the partial block divides",
    w: [a, x, ...new Array(62).fill(0), a, x],
    dtype: "f32",
    bs: 64,
    packed: "f3" + "77".repeat(31) + "f2",
    absmax: new Float32Array([a, a]),
  },
  {
    name: "blocksize 128",
    w: [...new Array(127).fill(0), -4, 1],
    dtype: "f32",
    bs: 128,
    packed: "77".repeat(63) + "70" + "f7",
    absmax: new Float32Array([4, 1]),
  },
];

Deno.test("nf4: hand-made blocks give bitsandbytes' bytes", async () => {
  using backend = await openBackend("cpu");
  for (const c of handCases) {
    const w = new Float32Array(c.w);
    const got = quantize(backend, w, c.dtype, c.bs);
    assert.equal(hex(got.packed), c.packed, `${c.name}: packed`);
    assert.deepEqual(bits(got.absmax), bits(c.absmax), `${c.name}: absmax`);
    const ref = nf4QuantizeRef(exact(w, c.dtype), c.bs);
    assert.equal(hex(ref.packed), c.packed, `${c.name}: the reference's packed`);
    assert.deepEqual(bits(ref.absmax), bits(c.absmax), `${c.name}: the reference's absmax`);
  }
});

Deno.test("nf4: quantize matches the reference on random inputs (f32, bf16, blocksizes 64..4096)", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const dtype of ["f32", "bf16"] as const) {
    for (const bs of [64, 128, 256, 512, 1024, 2048, 4096]) {
      // Odd sizes: a partial last block and a pad nibble; sometimes less than one block.
      const n = 2 * rng.int(0, Math.max(3000, 2 * bs) / 2) + 1;
      const w = exact(rng.normals(n, 10 ** rng.uniform(-3, 1)), dtype);
      if (n > bs && rng.next() < 0.5) w.fill(0, 0, bs); // a zero block
      const what = `${dtype} n=${n} blocksize=${bs} (seed ${rng.seed})`;
      const got = quantize(backend, w, dtype, bs);
      const want = nf4QuantizeRef(w, bs);
      assert.equal(hex(got.packed), hex(want.packed), `${what}: packed`);
      assert.deepEqual(bits(got.absmax), bits(want.absmax), `${what}: absmax`);
    }
  }
});

Deno.test("nf4: dequantize to f32 and bf16 is code × absmax, rounded", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const bs of [64, 256, 4096]) {
    for (const out of ["f32", "bf16"] as const) {
      const n = 2 * rng.int(1, 3000) + 1;
      const packed = new Uint8Array(Math.ceil(n / 2)).map(() => rng.int(0, 255));
      const absmax = new Float32Array(Math.ceil(n / bs)).map(() => rng.uniform(0, 3));
      const want = Float32Array.from(nf4DequantizeRef(packed, absmax, n, bs));
      const got = dequantize(backend, packed, absmax, n, bs, out);
      assert.deepEqual(bits(got), bits(exact(want, out)), `${out} n=${n} blocksize=${bs} (seed ${rng.seed})`);
    }
  }
});

Deno.test("nf4: the wrappers round-trip a weight to within half a code gap per block", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const [rows, cols] = [7, 96];
  const values = rng.normals(rows * cols);
  using w = backend.fromHost(values, [rows, cols], "f32");
  using q = nf4Quantize(backend, w, 64);
  using back = nf4Dequantize(backend, q, "f32");
  const got = back.toHost();
  const absmax = q.absmax.toHost();
  const ref = nf4QuantizeRef(values, 64);
  assert.deepEqual(q.packed.toHost(), ref.packed, `packed (seed ${rng.seed})`);
  assert.deepEqual(got, Float32Array.from(nf4DequantizeRef(ref.packed, ref.absmax, rows * cols, 64)));
  const maxGap = Math.max(...NF4_CODE.slice(1).map((c, i) => c - NF4_CODE[i]));
  for (let i = 0; i < got.length; i++) {
    const bound = (absmax[Math.floor(i / 64)] * maxGap) / 2;
    assert.ok(Math.abs(got[i] - values[i]) <= bound * (1 + 1e-6), `element ${i} (seed ${rng.seed})`);
  }
});

// ---- double quantization ---------------------------------------------------------

Deno.test("nf4: double quantization of hand-made absmax vectors", async () => {
  using backend = await openBackend("cpu");
  // offset 2; ±1 land on the ends of the dynamic map.
  let got = doubleQuantize(backend, new Float32Array([1, 3]));
  assert.deepEqual([...got.qabsmax], [0, 255]);
  assert.deepEqual([got.offset, ...got.absmax2], [2, 1]);
  assert.deepEqual([...got.back], [Math.fround(DYNAMIC_MAP[0] + 2), 3]);
  // Equal absmax: every difference is 0, so is absmax2, and bitsandbytes writes code 0.
  got = doubleQuantize(backend, new Float32Array(300).fill(0.25));
  assert.deepEqual([...got.qabsmax], new Array(300).fill(0));
  assert.deepEqual([got.offset, ...got.absmax2], [0.25, 0, 0]);
  assert.deepEqual([...got.back], new Array(300).fill(0.25));
  // torch's cascade summation: for this input absmax.mean() is 0x3f7fc7e8, which
  // neither a running float32 sum nor a float64 sum rounds to.
  const values = Float32Array.from({ length: 257 }, (_, i) => 0.01 * ((i * 37) % 101) + 0.5);
  got = doubleQuantize(backend, values);
  assert.deepEqual(bits(new Float32Array([got.offset])), new Uint32Array([0x3f7fc7e8]));
  assert.equal(Math.fround(torchSumF32(values) / 257), got.offset);
  let running = 0;
  for (const v of values) running = Math.fround(running + v);
  assert.notEqual(Math.fround(running / 257), got.offset);
});

Deno.test("nf4: double quantization matches the reference on random absmax vectors", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const n of [1, 7, 255, 256, 257, 2 * rng.int(300, 3000) + 1]) {
    const w = rng.normals(n * 64, rng.uniform(0.01, 1));
    const absmax = nf4QuantizeRef(w, 64).absmax;
    const what = `nblocks=${n} (seed ${rng.seed})`;
    const got = doubleQuantize(backend, absmax);
    const want = nf4DoubleQuantizeRef(absmax);
    assert.equal(got.offset, want.offset, `${what}: offset`);
    assert.equal(hex(got.qabsmax), hex(want.qabsmax), `${what}: qabsmax`);
    assert.deepEqual(bits(got.absmax2), bits(want.absmax2), `${what}: absmax2`);
    assert.deepEqual(bits(got.back), bits(nf4DoubleDequantizeRef(want.qabsmax, want.absmax2, want.offset)), what);
    // The 8-bit map keeps absmax to within a few percent of its largest deviation.
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(got.back[i] - absmax[i]) <= 0.03 * want.absmax2[Math.floor(i / 256)] + 1e-7, what);
    }
    using t = backend.fromHost(absmax, [n], "f32");
    using dq = nf4DoubleQuantize(backend, t);
    assert.deepEqual(dq.qabsmax.toHost(), got.qabsmax, `${what}: the wrapper`);
    using back = nf4DoubleDequantize(backend, dq);
    assert.deepEqual(bits(back.toHost()), bits(got.back), `${what}: the wrapper's inverse`);
  }
});

// ---- argument errors ---------------------------------------------------------------

Deno.test("nf4: bad arguments fail with a message that says what is wrong", async () => {
  using backend = await openBackend("cpu");
  using w = backend.fromHost(new Float32Array(128), [128], "f32");
  using packed = backend.empty([128], "nf4");
  using absmax = backend.empty([2], "f32");
  const s = backend.lib.symbols;
  const cases: [string, () => number, RegExp][] = [
    [
      "blocksize 96",
      () => s.lorac_nf4_quantize(backend.ctx, w.ptr, 0, 128n, 96, packed.ptr, absmax.ptr),
      /blocksize must be a power of two from 64 to 4096, got 96/,
    ],
    [
      "an nf4 input",
      () => s.lorac_nf4_quantize(backend.ctx, w.ptr, dtypeCode.nf4, 128n, 64, packed.ptr, absmax.ptr),
      /w_dtype must be F32 or BF16, got 2/,
    ],
    [
      "a u8 output",
      () => s.lorac_nf4_dequantize(backend.ctx, packed.ptr, absmax.ptr, 128n, 64, w.ptr, dtypeCode.u8),
      /out_dtype must be F32 or BF16, got 3/,
    ],
    [
      "no absmax",
      () => s.lorac_nf4_quantize(backend.ctx, w.ptr, 0, 128n, 64, packed.ptr, null),
      /w, packed or absmax is NULL/,
    ],
    [
      "an empty absmax vector",
      () => s.lorac_nf4_double_quantize(backend.ctx, absmax.ptr, 0n, packed.ptr, absmax.ptr, absmax.ptr),
      /nblocks = 0 must be positive/,
    ],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(
      () => backend.check(call()),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
      what,
    );
  }
  assert.throws(() => nf4Quantize(backend, w, 100), /power of two from 64 to 4096, got 100/);
});
