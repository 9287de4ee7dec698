/**
 * RMSNorm as LlamaRMSNorm computes it (fp32 math), with the input gradient
 * for a frozen weight.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel } from "./op_checks.ts";
import type { Tensor } from "./tensor.ts";

function rowsOf(x: FloatTensor, weight: FloatTensor): { rows: number; dim: number } {
  const dim = weight.numel;
  if (dim === 0 || x.numel % dim !== 0) {
    throw new RangeError(`x [${x.shape}] does not split into rows of the weight's ${dim} elements`);
  }
  return { rows: x.numel / dim, dim };
}

/**
 * y = x · rsqrt(mean(x²) + eps) · weight per row of x; rstd [rows] (f32)
 * keeps 1/sqrt(mean(x²) + eps) for the backward (pass null for inference).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { rmsnormForward } from "./norm.ts";
 * using backend = await openBackend("cpu");
 * using x = backend.fromHost(new Float32Array([3, 4]), [1, 2], "f32");
 * using w = backend.fromHost(new Float32Array([1, 2]), [2], "f32");
 * using y = backend.empty([1, 2], "f32");
 * rmsnormForward(backend, x, w, y, null, 0);
 * y.toHost(); // ≈ Float32Array [0.8485, 2.2627]
 * ```
 */
export function rmsnormForward(
  backend: Backend,
  x: FloatTensor,
  weight: FloatTensor,
  y: FloatTensor,
  rstd: Tensor<"f32"> | null,
  eps: number,
): void {
  const { rows, dim } = rowsOf(x, weight);
  expectNumel(y, rows * dim, "y");
  if (rstd) expectNumel(rstd, rows, "rstd");
  backend.check(
    backend.lib.symbols.lorac_rmsnorm_forward(
      backend.ctx,
      rows,
      dim,
      x.ptr,
      dtypeCode[x.dtype],
      weight.ptr,
      dtypeCode[weight.dtype],
      eps,
      y.ptr,
      dtypeCode[y.dtype],
      rstd?.ptr ?? null,
    ),
  );
}

/**
 * dx = ∂loss/∂x from dy = ∂loss/∂y and the forward's rstd (or dx += … with
 * `accumulate`, for the residual stream's gradient).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { rmsnormBackward, rmsnormForward } from "./norm.ts";
 * using backend = await openBackend("cpu");
 * using x = backend.fromHost(new Float32Array([3, 4]), [1, 2], "f32");
 * using w = backend.fromHost(new Float32Array([1, 1]), [2], "f32");
 * using y = backend.empty([1, 2], "f32");
 * using rstd = backend.empty([1], "f32");
 * rmsnormForward(backend, x, w, y, rstd, 0);
 * using dy = backend.fromHost(new Float32Array([4, -3]), [1, 2], "f32");
 * using dx = backend.empty([1, 2], "f32");
 * rmsnormBackward(backend, x, w, rstd, dy, dx);
 * dx.toHost(); // ≈ Float32Array [1.1314, -0.8485]: rstd · dy, as dy is orthogonal to x
 * ```
 */
export function rmsnormBackward(
  backend: Backend,
  x: FloatTensor,
  weight: FloatTensor,
  rstd: Tensor<"f32">,
  dy: FloatTensor,
  dx: FloatTensor,
  accumulate = false,
): void {
  const { rows, dim } = rowsOf(x, weight);
  expectNumel(rstd, rows, "rstd");
  expectNumel(dy, rows * dim, "dy");
  expectNumel(dx, rows * dim, "dx");
  backend.check(
    backend.lib.symbols.lorac_rmsnorm_backward(
      backend.ctx,
      rows,
      dim,
      x.ptr,
      dtypeCode[x.dtype],
      weight.ptr,
      dtypeCode[weight.dtype],
      rstd.ptr,
      dy.ptr,
      dtypeCode[dy.dtype],
      dx.ptr,
      dtypeCode[dx.dtype],
      accumulate ? 1 : 0,
    ),
  );
}
