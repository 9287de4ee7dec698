/**
 * Float64 reference of the lm_head + cross-entropy on selected rows: the
 * logits, each row's loss, and the gradient of the summed loss for H.
 *
 * @module
 */

/** logits [rows.length, V] of H [T, D] against W [V, D]. */
export function logitsRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: ArrayLike<number>,
  D: number,
): Float64Array {
  const V = w.length / D;
  const z = new Float64Array(rows.length * V);
  for (let k = 0; k < rows.length; k++) {
    for (let v = 0; v < V; v++) {
      let dot = 0;
      for (let i = 0; i < D; i++) dot += h[rows[k] * D + i] * w[v * D + i];
      z[k * V + v] = dot;
    }
  }
  return z;
}

/** Loss per row and d(sum of losses)/dH for each selected row ([rows.length, D]). */
export function crossEntropyRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: ArrayLike<number>,
  targets: ArrayLike<number>,
  D: number,
): { rowLoss: Float64Array; dRows: Float64Array } {
  const V = w.length / D;
  const z = logitsRef(h, w, rows, D);
  const rowLoss = new Float64Array(rows.length);
  const dRows = new Float64Array(rows.length * D);
  for (let k = 0; k < rows.length; k++) {
    const zk = z.subarray(k * V, (k + 1) * V);
    const max = zk.reduce((a, b) => Math.max(a, b), -Infinity);
    const sum = zk.reduce((a, b) => a + Math.exp(b - max), 0);
    rowLoss[k] = max + Math.log(sum) - zk[targets[k]];
    for (let v = 0; v < V; v++) {
      const g = Math.exp(zk[v] - max) / sum - (v === targets[k] ? 1 : 0);
      for (let i = 0; i < D; i++) dRows[k * D + i] += g * w[v * D + i];
    }
  }
  return { rowLoss, dRows };
}
