/**
 * Float64 reference of bitsandbytes' NF4 format: the code table, blockwise
 * absmax quantization with the first element in the high nibble, dequantize.
 *
 * @module
 */

/** bitsandbytes' NF4 code table (float32 values). */
export const NF4_CODE: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
].map(Math.fround);

/** The code index nearest to x in [-1, 1] (ties to the upper code). */
export function nf4Index(x: number): number {
  let best = 0;
  for (let i = 1; i < 16; i++) {
    const mid = (NF4_CODE[i - 1] + NF4_CODE[i]) / 2;
    if (x > mid) best = i;
  }
  return best;
}

/** Reference quantization: packed bytes and fp32 absmax per block. */
export function nf4QuantizeRef(w: ArrayLike<number>, blocksize = 64): { packed: Uint8Array; absmax: Float32Array } {
  const n = w.length;
  const nblocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(nblocks);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < nblocks; b++) {
    let m = 0;
    for (let i = b * blocksize; i < Math.min(n, (b + 1) * blocksize); i++) m = Math.max(m, Math.abs(w[i]));
    absmax[b] = m;
    for (let i = b * blocksize; i < Math.min(n, (b + 1) * blocksize); i++) {
      const q = nf4Index(m === 0 ? 0 : Math.fround(w[i] / absmax[b]));
      packed[i >> 1] |= (i & 1) === 0 ? q << 4 : q;
    }
  }
  return { packed, absmax };
}

/** Reference dequantization to float64 values. */
export function nf4DequantizeRef(packed: Uint8Array, absmax: ArrayLike<number>, n: number, blocksize = 64): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const byte = packed[i >> 1];
    const q = (i & 1) === 0 ? byte >> 4 : byte & 15;
    out[i] = NF4_CODE[q] * absmax[Math.floor(i / blocksize)];
  }
  return out;
}
