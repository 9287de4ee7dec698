/**
 * Float64 reference of SwiGLU, out = silu(gate) · up, and its gradients.
 *
 * @module
 */

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

/** silu(gate) · up elementwise. */
export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

/** dgate and dup from dout. */
export function swigluBackwardRef(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  dout: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = Float64Array.from(gate, (g, i) => {
    const s = sigmoid(g);
    return dout[i] * up[i] * s * (1 + g * (1 - s));
  });
  const dup = Float64Array.from(gate, (g, i) => dout[i] * g * sigmoid(g));
  return { dgate, dup };
}
