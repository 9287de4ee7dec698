/**
 * Float64 reference of RMSNorm (LlamaRMSNorm) and its input gradient.
 *
 * @module
 */

/** y [rows, dim] and rstd [rows] of RMSNorm with weight w [dim]. */
export function rmsnormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dim: number,
  eps: number,
): { y: Float64Array; rstd: Float64Array } {
  const rows = x.length / dim;
  const y = new Float64Array(x.length);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * rstd[r] * w[i];
  }
  return { y, rstd };
}

/** dx of RMSNorm from dy (the weight frozen). */
export function rmsnormBackwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dy: ArrayLike<number>,
  dim: number,
  eps: number,
): Float64Array {
  const { rstd } = rmsnormRef(x, w, dim, eps);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < rstd.length; r++) {
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += w[i] * dy[r * dim + i] * x[r * dim + i];
    const c = rstd[r] ** 3 * dot / dim;
    for (let i = 0; i < dim; i++) dx[r * dim + i] = rstd[r] * w[i] * dy[r * dim + i] - c * x[r * dim + i];
  }
  return dx;
}
