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

/**
 * Asserts that `numeric`, a central difference of a loss along the direction
 * `u`, equals <grad, u> to within `tol` |grad| |u|. The difference's error
 * (its step and float rounding) scales with |grad| |u|, not with <grad, u>,
 * which nearly cancels for some u: bounded relative to itself, such a check
 * fails on random directions now and then. `grad` and `u` are lists of parts
 * (e.g. dQ, dK, dV) taken as one vector.
 */
export function assertDirectionalDerivative(
  numeric: number,
  grad: readonly ArrayLike<number>[],
  u: readonly ArrayLike<number>[],
  tol: number,
  what: string,
): void {
  const analytic = grad.reduce((s, g, i) => s + dot(g, u[i]), 0);
  const norm = (parts: readonly ArrayLike<number>[]) => Math.sqrt(parts.reduce((s, p) => s + dot(p, p), 0));
  const bound = tol * norm(grad) * norm(u);
  if (!(Math.abs(numeric - analytic) <= bound)) {
    throw new Error(`${what}: <grad, u> ${analytic}, finite difference ${numeric}: more than ${bound} apart`);
  }
}
