/**
 * Finite-difference gradients, to check backward passes against the
 * forward they differentiate.
 *
 * @module
 */

/** Central-difference gradient of f at x (float64): (f(x + h e_i) - f(x - h e_i)) / 2h. */
export function numericGradient(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-5): Float64Array {
  const xs = Float64Array.from(x);
  const grad = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const keep = xs[i];
    xs[i] = keep + h;
    const up = f(xs);
    xs[i] = keep - h;
    const down = f(xs);
    xs[i] = keep;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** The scalar <a, b>, to turn an output into a loss with random weights. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
