/**
 * Float64 reference of RoPE with HF's rotate_half pairing: y = x·cos +
 * rotate_half(x)·sin, the angle (float)pos · inv_freq rounded to fp32 as
 * LlamaRotaryEmbedding does. `inverse` rotates by minus the angle (the
 * gradient).
 *
 * @module
 */

/** RoPE of x [T, nHeads, headDim] at positions [T] with invFreq [headDim / 2]. */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  nHeads: number,
  inverse = false,
): Float64Array {
  const half = invFreq.length;
  const d = 2 * half;
  const y = new Float64Array(x.length);
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * d;
      for (let i = 0; i < half; i++) {
        const a = Math.fround(positions[t] * invFreq[i]);
        const c = Math.cos(a), s = inverse ? -Math.sin(a) : Math.sin(a);
        y[o + i] = x[o + i] * c - x[o + i + half] * s;
        y[o + i + half] = x[o + i + half] * c + x[o + i] * s;
      }
    }
  }
  return y;
}
