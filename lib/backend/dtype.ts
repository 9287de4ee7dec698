/**
 * Element types of native tensors; the codes are `enum lorac_dtype` of cuda/lorac.h.
 *
 * @module
 */

/** A tensor's element type. `nf4` packs two 4-bit codes per byte. */
export type DType = "f32" | "bf16" | "nf4" | "u8" | "i32";

/** The C enum value of each dtype. */
export const dtypeCode: Record<DType, number> = { f32: 0, bf16: 1, nf4: 2, u8: 3, i32: 4 };

/**
 * Bytes needed for `n` elements of `dtype` (nf4 rounds up to whole bytes).
 *
 * @example
 * ```ts
 * import { byteSize } from "./dtype.ts";
 * byteSize("bf16", 3); // 6
 * byteSize("nf4", 3); // 2
 * ```
 */
export function byteSize(dtype: DType, n: number): number {
  switch (dtype) {
    case "f32":
    case "i32":
      return 4 * n;
    case "bf16":
      return 2 * n;
    case "u8":
      return n;
    case "nf4":
      return Math.ceil(n / 2);
  }
}

/** Rounds an f32 to bf16 bits, nearest even, as the native library does. */
export function f32ToBf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The f32 value of bf16 bits. */
export function bf16BitsToF32(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
}

/**
 * Packs numbers into bf16 (Uint16Array of bits), rounding to nearest even.
 *
 * @example
 * ```ts
 * import { toBf16, fromBf16 } from "./dtype.ts";
 * fromBf16(toBf16([1, 0.1]))[1]; // 0.10009765625
 * ```
 */
export function toBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    const bits = u[0];
    out[i] = (bits & 0x7fffffff) > 0x7f800000
      ? ((bits >>> 16) | 0x40) & 0xffff
      : ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** Unpacks bf16 bits into a Float32Array. */
export function fromBf16(bits: Uint16Array): Float32Array {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}
