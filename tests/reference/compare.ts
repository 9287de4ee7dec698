/**
 * Error measures for comparing kernel outputs with float64 references.
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * max |got - want| / max(max |want|, tiny): a relative error over the whole
 * tensor, robust to individual near-zero elements. NaN anywhere gives Infinity,
 * so a poisoned (unwritten) output always fails.
 */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new RangeError(`length ${got.length} != ${want.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!Number.isFinite(d)) return Infinity;
    if (d > maxDiff) maxDiff = d;
    if (Math.abs(want[i]) > maxRef) maxRef = Math.abs(want[i]);
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

/** Asserts relativeError(got, want) <= tol, naming the case and the seed. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  const err = relativeError(got, want);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(3)} > ${tol}`);
}

/** A Float32Array full of NaN: fill outputs with it so unwritten elements show. */
export function poison(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

/** bf16 NaN bits (0x7fc0) for poisoning bf16 outputs. */
export function poisonBf16(n: number): Uint16Array {
  return new Uint16Array(n).fill(0x7fc0);
}
