/**
 * Reference of bitsandbytes 0.50.2's NF4 format on the CPU, step for step in
 * float32 arithmetic (Math.fround) so that its bytes are bitsandbytes' bytes:
 * the code table, blockwise absmax quantization with the first element in the
 * high nibble, dequantization, and the double quantization of the absmax
 * (compress_statistics) with its inverse.
 *
 * @module
 */

const f = Math.fround;

/** bitsandbytes' NF4 code table (float32 values). */
export const NF4_CODE: readonly number[] = [
  -1.0,
  -0.6961928009986877,
  -0.5250730514526367,
  -0.39491748809814453,
  -0.28444138169288635,
  -0.18477343022823334,
  -0.09105003625154495,
  0.0,
  0.07958029955625534,
  0.16093020141124725,
  0.24611230194568634,
  0.33791524171829224,
  0.44070982933044434,
  0.5626170039176941,
  0.7229568362236023,
  1.0,
].map(f);

/** The 15 float32 midpoints between neighbouring NF4 codes, as bitsandbytes computes them. */
export const NF4_MIDPOINTS: readonly number[] = NF4_CODE.slice(1).map((c, i) => f(f(NF4_CODE[i] + c) / 2));

/**
 * The NF4 code of a value scaled to [-1, 1]: torch.bucketize against the
 * midpoints, so a value exactly on a midpoint takes the LOWER code; NaN gives 15.
 *
 * @example
 * ```ts
 * import { NF4_MIDPOINTS, nf4Index } from "./nf4.ts";
 * nf4Index(0); // 7
 * nf4Index(NF4_MIDPOINTS[7]); // 7
 * ```
 */
export function nf4Index(x: number): number {
  let q = 0;
  for (const m of NF4_MIDPOINTS) if (!(x <= m)) q++;
  return q;
}

/** torch.clamp(v, -1, 1): NaN passes through. */
function clamp1(v: number): number {
  return v < -1 ? -1 : v > 1 ? 1 : v;
}

/** torch.max over |x|: NaN wins. */
function absMax(w: ArrayLike<number>, start: number, end: number): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(w[i]);
    if (a > m || Number.isNaN(a)) m = a;
  }
  return m;
}

/** The float32 floor bitsandbytes puts under absmax (a subnormal). */
const ABSMAX_FLOOR = f(1e-38);

/**
 * Quantizes float32 (or bf16) values to NF4 as bitsandbytes does: a full block
 * scales by the float32 reciprocal of max(absmax, 1e-38) and stores absmax; the
 * partial last block divides by max(absmax, 1e-38) and stores that; odd n pads
 * the last low nibble with the code of 0.0 (7).
 *
 * @example
 * ```ts
 * import { nf4QuantizeRef } from "./nf4.ts";
 * const { packed, absmax } = nf4QuantizeRef([1, -1, 0], 64);
 * [...packed]; // [0xf0, 0x77]
 * absmax[0]; // 1
 * ```
 */
export function nf4QuantizeRef(w: ArrayLike<number>, blocksize = 64): { packed: Uint8Array; absmax: Float32Array } {
  const n = w.length;
  const nblocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(nblocks);
  const codes = new Uint8Array(n + (n & 1)).fill(nf4Index(0));
  for (let b = 0; b < nblocks; b++) {
    const start = b * blocksize;
    const end = Math.min(n, start + blocksize);
    const partial = end - start < blocksize;
    const amax = absMax(w, start, end);
    const floored = Number.isNaN(amax) ? amax : Math.max(amax, ABSMAX_FLOOR);
    const inv = f(1 / floored);
    absmax[b] = partial ? floored : amax;
    for (let i = start; i < end; i++) {
      codes[i] = nf4Index(clamp1(partial ? f(w[i] / floored) : f(w[i] * inv)));
    }
  }
  const packed = new Uint8Array(codes.length / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = (codes[2 * i] << 4) | codes[2 * i + 1];
  return { packed, absmax };
}

/**
 * Dequantizes NF4: code × absmax of the element's block, rounded to float32
 * as bitsandbytes does (round to bf16 afterwards for bf16 output).
 *
 * @example
 * ```ts
 * import { nf4DequantizeRef } from "./nf4.ts";
 * nf4DequantizeRef(new Uint8Array([0xf0]), [2], 2, 64); // Float64Array [2, -2]
 * ```
 */
export function nf4DequantizeRef(
  packed: Uint8Array,
  absmax: ArrayLike<number>,
  n: number,
  blocksize = 64,
): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const byte = packed[i >> 1];
    const q = (i & 1) === 0 ? byte >> 4 : byte & 15;
    out[i] = f(NF4_CODE[q] * absmax[Math.floor(i / blocksize)]);
  }
  return out;
}

// ---- double quantization ---------------------------------------------------

/** Entries 128..254 of bitsandbytes' signed dynamic map (create_dynamic_map()). */
// deno-fmt-ignore
const DYNAMIC_POSITIVE = [
  5.5000004e-07, 3.2500002e-06, 7.75e-06, 2.1249998e-05, 4.375e-05, 6.625e-05, 8.875e-05,
  0.00015625001, 0.00026875004, 0.00038125002, 0.00049375003, 0.0006062501, 0.00071875006,
  0.00083125, 0.0009437501, 0.0012812499, 0.00184375, 0.00240625, 0.00296875, 0.0035312497,
  0.00409375, 0.0046562497, 0.0052187503, 0.00578125, 0.00634375, 0.00690625, 0.00746875, 0.00803125,
  0.00859375, 0.009156249, 0.00971875, 0.01140625, 0.01421875, 0.01703125, 0.019843752, 0.02265625,
  0.02546875, 0.028281251, 0.03109375, 0.03390625, 0.036718752, 0.03953125, 0.042343747, 0.04515625,
  0.04796875, 0.05078125, 0.05359375, 0.05640625, 0.059218753, 0.06203125, 0.06484375, 0.067656256,
  0.070468746, 0.07328125, 0.07609375, 0.07890625, 0.08171876, 0.08453125, 0.08734375, 0.09015625,
  0.092968754, 0.09578126, 0.09859375, 0.107031256, 0.12109375, 0.13515624, 0.14921875, 0.16328125,
  0.17734376, 0.19140625, 0.20546874, 0.21953125, 0.23359375, 0.24765624, 0.26171875, 0.27578127,
  0.28984374, 0.30390626, 0.31796873, 0.33203125, 0.34609374, 0.36015624, 0.37421876, 0.38828123,
  0.40234375, 0.41640624, 0.43046874, 0.44453126, 0.45859373, 0.47265625, 0.4867187, 0.50078124,
  0.5148437, 0.5289062, 0.54296875, 0.5570313, 0.5710938, 0.58515626, 0.5992187, 0.61328125,
  0.6273438, 0.6414063, 0.65546876, 0.6695312, 0.68359375, 0.6976563, 0.7117188, 0.72578126,
  0.7398437, 0.75390625, 0.7679688, 0.78203124, 0.79609376, 0.8101562, 0.82421875, 0.8382813,
  0.85234374, 0.86640626, 0.8804687, 0.89453125, 0.9085938, 0.92265624, 0.93671876, 0.9507812,
  0.96484375, 0.9789063, 0.99296874,
].map(f);

/** bitsandbytes' signed 8-bit dynamic map (256 sorted float32 values, -0.99297 .. 1). */
export const DYNAMIC_MAP: readonly number[] = [
  ...DYNAMIC_POSITIVE.map((v) => -v).reverse(),
  0,
  ...DYNAMIC_POSITIVE,
  1,
];

const DYNAMIC_MIDPOINTS = DYNAMIC_MAP.slice(1).map((c, i) => f(0.5 * f(DYNAMIC_MAP[i] + c)));

/** Elements per absmax2 block of the double quantization. */
export const DOUBLE_BLOCK = 256;

/**
 * libbitsandbytes_cpu's 8-bit code of v in [-1, 1]: one of 65536 bins,
 * trunc(fma((v + 1) · 0.5, 65535, 0.5)), then the first map entry whose upper
 * midpoint is not below the bin's value (2·bin/65535 − 1).
 *
 * @example
 * ```ts
 * import { dynamicIndex } from "./nf4.ts";
 * // The bins are coarser than the map near 0: 0 lands on entry 131 (2.1e-5).
 * [dynamicIndex(-1), dynamicIndex(0), dynamicIndex(1)]; // [0, 131, 255]
 * ```
 */
export function dynamicIndex(v: number): number {
  if (Number.isNaN(v)) return 0;
  // a·65535 + 0.5 is exact in float64, so one fround is the fused multiply-add.
  const bin = Math.trunc(f(f(f(v + 1) * 0.5) * 65535 + 0.5));
  const value = f(f(f(2 * bin) / 65535) - 1);
  let q = 0;
  while (q < 255 && DYNAMIC_MIDPOINTS[q] < value) q++;
  return q;
}

/**
 * torch's float32 sum of a contiguous vector on one thread of its AVX2 build
 * (SumKernel.cpp): 8-lane vectors summed as rows of 4 in a 4-level cascade,
 * then the scalar tail, then the lanes. bitsandbytes' offset is this sum / n.
 *
 * @example
 * ```ts
 * import { torchSumF32 } from "./nf4.ts";
 * torchSumF32(new Float32Array(20).fill(0.1)); // ≈ 2
 * ```
 */
export function torchSumF32(x: ArrayLike<number>): number {
  const n = x.length;
  if (n < 8) return rowSum(n, 1, (i) => [x[i]])[0];
  const nvec = Math.floor(n / 8);
  const lanes = rowSum(nvec, 8, (i) => Array.from({ length: 8 }, (_, k) => x[i * 8 + k]));
  let total = 0;
  for (let i = nvec * 8; i < n; i++) total = f(total + x[i]);
  for (const l of lanes) total = f(total + l);
  return total;
}

type Lanes = number[];

function addLanes(acc: Lanes, x: Lanes): void {
  for (let k = 0; k < acc.length; k++) acc[k] = f(acc[k] + x[k]);
}

/** torch's row_sum: 4 interleaved partial sums (multi_row_sum), the tail, then the partials. */
function rowSum(size: number, width: number, load: (i: number) => Lanes): Lanes {
  const levels = 4;
  const rows = Math.floor(size / 4);
  let ceilLog2 = 1;
  while (2 ** ceilLog2 < rows) ceilLog2++;
  const power = Math.max(4, Math.floor(ceilLog2 / levels));
  const step = 2 ** power;
  const zero = (): Lanes => new Array(width).fill(0);
  const acc: Lanes[][] = Array.from({ length: levels }, () => Array.from({ length: 4 }, zero));
  let i = 0;
  while (i + step <= rows) {
    for (let j = 0; j < step; j++, i++) for (let k = 0; k < 4; k++) addLanes(acc[0][k], load(i * 4 + k));
    for (let j = 1; j < levels; j++) {
      for (let k = 0; k < 4; k++) {
        addLanes(acc[j][k], acc[j - 1][k]);
        acc[j - 1][k] = zero();
      }
      if (Math.floor(i / 2 ** (j * power)) % step !== 0) break;
    }
  }
  for (; i < rows; i++) for (let k = 0; k < 4; k++) addLanes(acc[0][k], load(i * 4 + k));
  for (let j = 1; j < levels; j++) for (let k = 0; k < 4; k++) addLanes(acc[0][k], acc[j][k]);
  const partial = acc[0];
  for (let t = rows * 4; t < size; t++) addLanes(partial[0], load(t));
  for (let k = 1; k < 4; k++) addLanes(partial[0], partial[k]);
  return partial[0];
}

/**
 * bitsandbytes' compress_statistics: offset = absmax.mean() in float32, then
 * absmax − offset quantized to the dynamic map in blocks of 256 (a block whose
 * absmax2 is 0 gets code 0).
 *
 * @example
 * ```ts
 * import { nf4DoubleQuantizeRef } from "./nf4.ts";
 * const { qabsmax, absmax2, offset } = nf4DoubleQuantizeRef([1, 3]);
 * [offset, absmax2[0], ...qabsmax]; // [2, 1, 0, 255]
 * ```
 */
export function nf4DoubleQuantizeRef(
  absmax: ArrayLike<number>,
): { qabsmax: Uint8Array; absmax2: Float32Array; offset: number } {
  const n = absmax.length;
  const offset = f(torchSumF32(absmax) / n);
  const qabsmax = new Uint8Array(n);
  const absmax2 = new Float32Array(Math.ceil(n / DOUBLE_BLOCK));
  for (let b = 0; b < absmax2.length; b++) {
    const start = b * DOUBLE_BLOCK;
    const end = Math.min(n, start + DOUBLE_BLOCK);
    let amax = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(f(absmax[i] - offset));
      if (a > amax) amax = a; // bitsandbytes' max skips NaN
    }
    absmax2[b] = amax;
    const inv = f(1 / amax);
    for (let i = start; i < end; i++) {
      qabsmax[i] = amax === 0 ? 0 : dynamicIndex(clamp1(f(f(absmax[i] - offset) * inv)));
    }
  }
  return { qabsmax, absmax2, offset };
}

/**
 * The inverse: dynamic_map[q] × absmax2 + offset, each step rounded to float32.
 *
 * @example
 * ```ts
 * import { nf4DoubleDequantizeRef } from "./nf4.ts";
 * nf4DoubleDequantizeRef(new Uint8Array([0, 255]), [1], 2); // Float32Array [≈1.007, 3]
 * ```
 */
export function nf4DoubleDequantizeRef(qabsmax: Uint8Array, absmax2: ArrayLike<number>, offset: number): Float32Array {
  const out = new Float32Array(qabsmax.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = f(f(DYNAMIC_MAP[qabsmax[i]] * absmax2[Math.floor(i / DOUBLE_BLOCK)]) + offset);
  }
  return out;
}
