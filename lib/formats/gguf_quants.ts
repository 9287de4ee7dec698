/**
 * ggml tensor types: block sizes for every type a GGUF file may hold, and
 * dequantization to float32 of the ones real Llama GGUFs use — F32, F16,
 * BF16, Q8_0, Q4_0, Q4_1 and the K-quants Q4_K, Q5_K, Q6_K. The loops follow
 * ggml's dequantize_row_* (ggml-quants.c) and give the same float32 values
 * bit for bit (each product or sum is formed exactly and rounded once, as
 * ggml's float arithmetic rounds it); they read the bytes directly, allocate
 * nothing per element and look F16 scales up in a table.
 *
 * @module
 */

import { f16Table32 } from "./float16.ts";

/** A ggml type's layout: elements per block and bytes per block. */
export interface GgmlTypeInfo {
  /** ggml's name, e.g. "Q4_K". */
  readonly name: string;
  /** ggml_type id as stored in GGUF tensor infos. */
  readonly id: number;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

const QK_K = 256;

// [id, name, block size, bytes per block] — ggml.h's ggml_type and ggml.c's type_traits.
const TABLE: [number, string, number, number][] = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 40],
  [10, "Q2_K", QK_K, 84],
  [11, "Q3_K", QK_K, 110],
  [12, "Q4_K", QK_K, 144],
  [13, "Q5_K", QK_K, 176],
  [14, "Q6_K", QK_K, 210],
  [15, "Q8_K", QK_K, 292],
  [16, "IQ2_XXS", QK_K, 66],
  [17, "IQ2_XS", QK_K, 74],
  [18, "IQ3_XXS", QK_K, 98],
  [19, "IQ1_S", QK_K, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", QK_K, 110],
  [22, "IQ2_S", QK_K, 82],
  [23, "IQ4_XS", QK_K, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", QK_K, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", QK_K, 54],
  [35, "TQ2_0", QK_K, 66],
  [39, "MXFP4", 32, 17],
];

/** Every ggml type by id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  TABLE.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);

/** The ggml type names {@link dequantize} handles. */
export const DEQUANTIZABLE: readonly string[] = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"];

/**
 * Bytes that `n` elements of ggml type `type` occupy; throws when n is not a
 * whole number of blocks.
 *
 * @example
 * ```ts
 * import { ggmlByteSize, GGML_TYPES } from "./gguf_quants.ts";
 * ggmlByteSize(GGML_TYPES.get(12)!, 512); // 288 (two Q4_K blocks)
 * ```
 */
export function ggmlByteSize(type: GgmlTypeInfo, n: number): number {
  if (n % type.blockSize !== 0) {
    throw new RangeError(`${n} elements are not whole ${type.name} blocks of ${type.blockSize}`);
  }
  return (n / type.blockSize) * type.typeSize;
}

function f16At(t: Float32Array, b: Uint8Array, o: number): number {
  return t[b[o] | (b[o + 1] << 8)];
}

function deqQ8_0(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 34, y += 32) {
    const d = f16At(t, src, o);
    for (let j = 0; j < 32; j++) out[y + j] = ((src[o + 2 + j] << 24) >> 24) * d;
  }
}

function deqQ4_0(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 18, y += 32) {
    const d = f16At(t, src, o);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[y + j] = ((q & 15) - 8) * d;
      out[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

function deqQ4_1(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 20, y += 32) {
    const d = f16At(t, src, o);
    const m = f16At(t, src, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j];
      out[y + j] = (q & 15) * d + m;
      out[y + j + 16] = (q >> 4) * d + m;
    }
  }
}

// ggml's get_scale_min_k4: eight 6-bit scales and eight 6-bit mins packed in 12 bytes.
function scaleK4(b: Uint8Array, s: number, j: number): number {
  return j < 4 ? b[s + j] & 63 : (b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4);
}

function minK4(b: Uint8Array, s: number, j: number): number {
  return j < 4 ? b[s + j + 4] & 63 : (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4);
}

function deqQ4_K(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 144) {
    const d = f16At(t, src, o);
    const dmin = f16At(t, src, o + 2);
    const s = o + 4;
    let q = o + 16;
    for (let j = 0; j < 8; j += 2, q += 32) {
      const d1 = d * scaleK4(src, s, j), m1 = dmin * minK4(src, s, j);
      const d2 = d * scaleK4(src, s, j + 1), m2 = dmin * minK4(src, s, j + 1);
      for (let l = 0; l < 32; l++) out[y + l] = d1 * (src[q + l] & 15) - m1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = d2 * (src[q + l] >> 4) - m2;
      y += 64;
    }
  }
}

function deqQ5_K(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 176) {
    const d = f16At(t, src, o);
    const dmin = f16At(t, src, o + 2);
    const s = o + 4;
    const qh = o + 16;
    let q = o + 48;
    // Sub-block j takes its fifth bit from bit j of qh (ggml's u1/u2 masks).
    for (let j = 0; j < 8; j += 2, q += 32) {
      const d1 = d * scaleK4(src, s, j), m1 = dmin * minK4(src, s, j);
      const d2 = d * scaleK4(src, s, j + 1), m2 = dmin * minK4(src, s, j + 1);
      for (let l = 0; l < 32; l++) out[y + l] = d1 * ((src[q + l] & 15) | (((src[qh + l] >> j) & 1) << 4)) - m1;
      for (let l = 0; l < 32; l++) {
        out[y + 32 + l] = d2 * ((src[q + l] >> 4) | (((src[qh + l] >> (j + 1)) & 1) << 4)) - m2;
      }
      y += 64;
    }
  }
}

function deqQ6_K(src: Uint8Array, out: Float32Array, nb: number): void {
  const t = f16Table32();
  for (let i = 0, o = 0, y = 0; i < nb; i++, o += 210) {
    const d = f16At(t, src, o + 208);
    for (let n = 0; n < 2; n++, y += 128) {
      const ql = o + 64 * n, qh = o + 128 + 32 * n, sc = o + 192 + 8 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const a = src[ql + l], b = src[ql + l + 32];
        // d * scale is exact (19 bits); the product with q is exact in float64 and rounds once on store.
        out[y + l] = d * ((src[sc + is] << 24) >> 24) * (((a & 15) | ((h & 3) << 4)) - 32);
        out[y + l + 32] = d * ((src[sc + is + 2] << 24) >> 24) * (((b & 15) | (((h >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = d * ((src[sc + is + 4] << 24) >> 24) * (((a >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = d * ((src[sc + is + 6] << 24) >> 24) * (((b >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

/**
 * Dequantizes `n` elements of ggml type `type` from the start of `src` into
 * `out[0..n)`. Throws for a type outside {@link DEQUANTIZABLE} or when `src`
 * is too short.
 *
 * @example
 * ```ts
 * import { dequantize, GGML_TYPES } from "./gguf_quants.ts";
 * // One Q8_0 block: scale 0.5 (f16 0x3800), codes 0..31.
 * const block = new Uint8Array(34);
 * block[0] = 0x00; block[1] = 0x38;
 * for (let j = 0; j < 32; j++) block[2 + j] = j;
 * const out = new Float32Array(32);
 * dequantize(GGML_TYPES.get(8)!, block, out, 32);
 * out[3]; // 1.5
 * ```
 */
export function dequantize(type: GgmlTypeInfo, src: Uint8Array, out: Float32Array, n: number): Float32Array {
  const bytes = ggmlByteSize(type, n);
  if (src.length < bytes) throw new RangeError(`${n} ${type.name} elements need ${bytes} bytes, got ${src.length}`);
  if (out.length < n) throw new RangeError(`output holds ${out.length} values, ${n} needed`);
  const nb = n / type.blockSize;
  switch (type.name) {
    case "F32": {
      const b = src.byteOffset % 4 === 0 ? src : src.slice(0, bytes);
      out.set(new Float32Array(b.buffer, b.byteOffset, n));
      break;
    }
    case "F16": {
      const t = f16Table32();
      for (let i = 0; i < n; i++) out[i] = t[src[2 * i] | (src[2 * i + 1] << 8)];
      break;
    }
    case "BF16": {
      const u = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = (src[2 * i] << 16) | (src[2 * i + 1] << 24);
      break;
    }
    case "Q8_0":
      deqQ8_0(src, out, nb);
      break;
    case "Q4_0":
      deqQ4_0(src, out, nb);
      break;
    case "Q4_1":
      deqQ4_1(src, out, nb);
      break;
    case "Q4_K":
      deqQ4_K(src, out, nb);
      break;
    case "Q5_K":
      deqQ5_K(src, out, nb);
      break;
    case "Q6_K":
      deqQ6_K(src, out, nb);
      break;
    default:
      throw new TypeError(
        `cannot dequantize ggml type ${type.name}: lorac reads ${DEQUANTIZABLE.join(", ")}; ` +
          "re-quantize the GGUF to one of those (e.g. Q4_K_M) or use the Hugging Face model",
      );
  }
  return out;
}
