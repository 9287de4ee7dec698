/**
 * Argument checks shared by the transformer op wrappers: each throws a
 * RangeError that names the tensor, what it should be and what it is.
 *
 * @module
 */

import type { DType } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Throws unless `t` holds exactly `n` elements (its shape is otherwise free).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { expectNumel } from "./op_checks.ts";
 * using backend = await openBackend("cpu");
 * using t = backend.empty([2, 3], "f32");
 * expectNumel(t, 6, "x"); // passes; 5 would throw
 * ```
 */
export function expectNumel(t: Tensor, n: number, what: string): void {
  if (t.numel !== n) throw new RangeError(`${what} must hold ${n} elements, got [${t.shape}] (${t.numel})`);
}

/**
 * Throws unless every tensor has the dtype of the first; returns that dtype.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { sameDtype } from "./op_checks.ts";
 * using backend = await openBackend("cpu");
 * using a = backend.empty([2], "f32");
 * using b = backend.empty([2], "f32");
 * sameDtype({ a, b }); // "f32"
 * ```
 */
export function sameDtype<D extends DType>(tensors: Record<string, Tensor<D>>): D {
  const entries = Object.entries(tensors);
  const dtype = entries[0][1].dtype;
  for (const [name, t] of entries) {
    if (t.dtype !== dtype) {
      throw new RangeError(`${name} is ${t.dtype} but ${entries[0][0]} is ${dtype}: these tensors share one dtype`);
    }
  }
  return dtype;
}
