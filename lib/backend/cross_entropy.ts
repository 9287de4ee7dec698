/**
 * The lm_head fused with cross-entropy on selected rows only (rows that
 * carry no loss never meet the output matrix), plus the inference outputs of
 * the same head: logits of selected rows and log-probabilities of given
 * tokens (label scoring). The [rows, V] logits never exist in training.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel } from "./op_checks.ts";
import { addScaled } from "./residual.ts";
import type { Tensor } from "./tensor.ts";

function dims(h: FloatTensor, w: FloatTensor): { T: number; D: number; V: number } {
  if (w.shape.length !== 2) throw new RangeError(`W must be [V, D], got [${w.shape}]`);
  const [V, D] = w.shape;
  if (h.numel % D !== 0) {
    throw new RangeError(`H [${h.shape}] does not split into rows of D = ${D} (W is [${w.shape}])`);
  }
  return { T: h.numel / D, D, V };
}

/** Outputs and gradient options of {@link linearCrossEntropy}. */
export interface CrossEntropyOutputs {
  /** Receives the summed loss, f32 [1] (device memory). */
  lossSum: Tensor<"f32">;
  /** Receives each row's loss, f32 [rows] (optional). */
  rowLoss?: Tensor<"f32">;
  /** Receives gradScale · ∂loss/∂H in the selected rows of this [T, D] tensor; other rows are untouched. */
  dH?: FloatTensor;
  /** Factor on dH, e.g. 1 / number of loss tokens (default 1). */
  gradScale?: number;
  /** Add into dH instead of overwriting its selected rows. */
  accumulate?: boolean;
}

/**
 * Cross-entropy of z = H[rows] · Wᵀ against targets, H [T, D], W [V, D];
 * with `dH`, also the gradient of the (scaled) summed loss for those rows,
 * which must then be distinct.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { linearCrossEntropy } from "./cross_entropy.ts";
 * using backend = await openBackend("cpu");
 * using h = backend.fromHost(new Float32Array([0, 0, 1, 0]), [2, 2], "f32");
 * using w = backend.fromHost(new Float32Array([1, 0, 0, 1, 0, 0]), [3, 2], "f32");
 * using rows = backend.fromHost(new Int32Array([0]), [1], "i32");
 * using targets = backend.fromHost(new Int32Array([2]), [1], "i32");
 * using lossSum = backend.empty([1], "f32");
 * linearCrossEntropy(backend, h, w, rows, targets, { lossSum });
 * lossSum.toHost()[0]; // ≈ 1.0986 = log 3: row 0 of H is zero, so all logits tie
 * ```
 */
export function linearCrossEntropy(
  backend: Backend,
  h: FloatTensor,
  w: FloatTensor,
  rows: Tensor<"i32">,
  targets: Tensor<"i32">,
  outputs: CrossEntropyOutputs,
): void {
  const { T, D, V } = dims(h, w);
  const n = rows.numel;
  expectNumel(targets, n, "targets");
  expectNumel(outputs.lossSum, 1, "lossSum");
  if (outputs.rowLoss) expectNumel(outputs.rowLoss, n, "rowLoss");
  if (outputs.dH) expectNumel(outputs.dH, T * D, "dH");
  backend.check(
    backend.lib.symbols.lorac_linear_cross_entropy(
      backend.ctx,
      n,
      rows.ptr,
      targets.ptr,
      T,
      D,
      V,
      h.ptr,
      dtypeCode[h.dtype],
      w.ptr,
      dtypeCode[w.dtype],
      outputs.gradScale ?? 1,
      outputs.lossSum.ptr,
      outputs.rowLoss?.ptr ?? null,
      outputs.dH?.ptr ?? null,
      dtypeCode[outputs.dH?.dtype ?? "f32"],
      outputs.accumulate ? 1 : 0,
    ),
  );
}

/**
 * logits [rows, V] (f32) = H[rows] · Wᵀ, for inference.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { linearLogits } from "./cross_entropy.ts";
 * using backend = await openBackend("cpu");
 * using h = backend.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2], "f32");
 * using w = backend.fromHost(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2], "f32");
 * using rows = backend.fromHost(new Int32Array([1]), [1], "i32");
 * using logits = backend.empty([1, 3], "f32");
 * linearLogits(backend, h, w, rows, logits);
 * logits.toHost(); // Float32Array [3, 4, 7]
 * ```
 */
export function linearLogits(
  backend: Backend,
  h: FloatTensor,
  w: FloatTensor,
  rows: Tensor<"i32">,
  logits: Tensor<"f32">,
): void {
  const { T, D, V } = dims(h, w);
  expectNumel(logits, rows.numel * V, "logits");
  backend.check(
    backend.lib.symbols.lorac_linear_logits(
      backend.ctx,
      rows.numel,
      rows.ptr,
      T,
      D,
      V,
      h.ptr,
      dtypeCode[h.dtype],
      w.ptr,
      dtypeCode[w.dtype],
      logits.ptr,
    ),
  );
}

/**
 * out[k] = log softmax(H[rows[k]] · Wᵀ)[tokens[k]]: the log-probability of a
 * given token at a given row (label scoring); rows may repeat.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { tokenLogprobs } from "./cross_entropy.ts";
 * using backend = await openBackend("cpu");
 * using h = backend.fromHost(new Float32Array([0, 0]), [1, 2], "f32");
 * using w = backend.fromHost(new Float32Array([1, 0, 0, 1]), [2, 2], "f32");
 * using rows = backend.fromHost(new Int32Array([0, 0]), [2], "i32");
 * using tokens = backend.fromHost(new Int32Array([0, 1]), [2], "i32");
 * using out = backend.empty([2], "f32");
 * tokenLogprobs(backend, h, w, rows, tokens, out);
 * out.toHost(); // ≈ Float32Array [-0.6931, -0.6931]: two tied tokens
 * ```
 */
export function tokenLogprobs(
  backend: Backend,
  h: FloatTensor,
  w: FloatTensor,
  rows: Tensor<"i32">,
  tokens: Tensor<"i32">,
  out: Tensor<"f32">,
): void {
  using lossSum = backend.empty([1], "f32");
  linearCrossEntropy(backend, h, w, rows, tokens, { lossSum, rowLoss: out });
  addScaled(backend, out, out, null, { alpha: -1 });
}
