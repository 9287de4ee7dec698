/**
 * 16-bit floats to float32, for the F16 and BF16 tensors of safetensors and
 * GGUF files. F16 goes through a 65,536-entry table (built once, 256 KiB), so
 * converting a tensor is one indexed load per element.
 *
 * @module
 */

let f16Table: Float32Array | null = null;

/** The float32 value of every IEEE half-precision bit pattern, built on first use. */
export function f16Table32(): Float32Array {
  if (f16Table !== null) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13); // inf, NaN (payload kept)
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else table[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero and subnormals: exact in f32
  }
  f16Table = table;
  return table;
}

/**
 * The float32 value of one half-precision bit pattern.
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./float16.ts";
 * f16ToF32(0x3c00); // 1
 * f16ToF32(0xc000); // -2
 * ```
 */
export function f16ToF32(bits: number): number {
  return f16Table32()[bits & 0xffff];
}

/**
 * Converts half-precision bit patterns to float32 into `out` (which must be at
 * least as long as `src`).
 *
 * @example
 * ```ts
 * import { f16ArrayToF32 } from "./float16.ts";
 * const out = new Float32Array(2);
 * f16ArrayToF32(new Uint16Array([0x3c00, 0x3800]), out); // out = [1, 0.5]
 * ```
 */
export function f16ArrayToF32(src: Uint16Array, out: Float32Array): Float32Array {
  if (out.length < src.length) throw new RangeError(`output holds ${out.length} values, the input has ${src.length}`);
  const t = f16Table32();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/**
 * Converts bfloat16 bit patterns to float32 into `out` (exact: bf16 is the top
 * half of a float32).
 *
 * @example
 * ```ts
 * import { bf16ArrayToF32 } from "./float16.ts";
 * const out = new Float32Array(1);
 * bf16ArrayToF32(new Uint16Array([0x3fc0]), out); // out = [1.5]
 * ```
 */
export function bf16ArrayToF32(src: Uint16Array, out: Float32Array): Float32Array {
  if (out.length < src.length) throw new RangeError(`output holds ${out.length} values, the input has ${src.length}`);
  const u = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}
