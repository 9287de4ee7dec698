/**
 * y = alpha · a + beta · b: the residual add, scaling, summing gradients.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel } from "./op_checks.ts";

/** Coefficients of {@link addScaled}; both default to 1. */
export interface AddScaledOptions {
  /** Weight of a. */
  alpha?: number;
  /** Weight of b. */
  beta?: number;
}

/**
 * y = alpha · a + beta · b elementwise (b null: y = alpha · a). y may be a or
 * b; each tensor may be f32 or bf16.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { addScaled } from "./residual.ts";
 * using backend = await openBackend("cpu");
 * using h = backend.fromHost(new Float32Array([1, 2]), [2], "f32");
 * using f = backend.fromHost(new Float32Array([10, 20]), [2], "f32");
 * addScaled(backend, h, h, f); // the residual add, in place
 * h.toHost(); // Float32Array [11, 22]
 * addScaled(backend, h, h, null, { alpha: 0.5 });
 * h.toHost(); // Float32Array [5.5, 11]
 * ```
 */
export function addScaled(
  backend: Backend,
  y: FloatTensor,
  a: FloatTensor,
  b: FloatTensor | null,
  options: AddScaledOptions = {},
): void {
  expectNumel(a, y.numel, "a");
  if (b) expectNumel(b, y.numel, "b");
  const beta = b ? options.beta ?? 1 : 0;
  backend.check(
    backend.lib.symbols.lorac_add_scaled(
      backend.ctx,
      BigInt(y.numel),
      options.alpha ?? 1,
      a.ptr,
      dtypeCode[a.dtype],
      beta,
      b?.ptr ?? null,
      dtypeCode[b?.dtype ?? "f32"],
      y.ptr,
      dtypeCode[y.dtype],
    ),
  );
}
