/**
 * A frozen linear projection with an optional LoRA adapter, forward and
 * backward: y (+)= x·Wᵀ + scale·(drop(x)·Aᵀ)·Bᵀ with W NF4 or dense, and the
 * gradients of A, B and (when asked) x. The base weight gets no gradient.
 *
 * @module
 */

import type { Backend } from "../backend/backend.ts";
import { type FloatTensor, gemm, nf4Gemm, nf4GemmDx } from "../backend/gemm.ts";
import { type LoraAdapter, loraBackward, loraForward } from "../backend/lora.ts";
import { Tensor } from "../backend/tensor.ts";
import type { LoraModule } from "./lora_params.ts";
import type { LinearWeight } from "./weights.ts";

/** The adapter of one projection as one call applies it: dropout and mask seed of this forward. */
export interface AppliedLora {
  /** The module (A, B, gradients). */
  readonly module: LoraModule;
  /** The adapter with this forward's dropout and seed (the same object must reach the backward). */
  readonly adapter: LoraAdapter;
}

/**
 * y = x·Wᵀ (+ the LoRA update), or y += … with `accumulate`. xa [rows, r]
 * receives drop(x)·Aᵀ for the backward when there is an adapter.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { linearForward } from "./linear.ts";
 * using backend = await openBackend("cpu");
 * using w = backend.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2], "f32");
 * using x = backend.fromHost(new Float32Array([1, 1]), [1, 2], "f32");
 * using y = backend.empty([1, 2], "f32");
 * linearForward(backend, x, w, null, null, y, false);
 * y.toHost(); // Float32Array [3, 7]
 * ```
 */
export function linearForward(
  backend: Backend,
  x: FloatTensor,
  w: LinearWeight,
  lora: AppliedLora | null,
  xa: Tensor<"f32"> | null,
  y: FloatTensor,
  accumulate: boolean,
): void {
  if (w instanceof Tensor) gemm(backend, x, w, y, { transB: true, beta: accumulate ? 1 : 0 });
  else nf4Gemm(backend, x, w, y, accumulate);
  if (lora) {
    if (!xa) throw new Error(`linearForward: ${lora.module.name} has an adapter but no xa buffer was planned`);
    loraForward(backend, x, lora.adapter, xa, y);
  }
}

/**
 * The backward of {@link linearForward} from dy: the adapter's dA and dB are
 * added to, and when dx is given it receives (or with `accumulate` gains)
 * dy·W plus the adapter's part.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { linearBackward } from "./linear.ts";
 * using backend = await openBackend("cpu");
 * using w = backend.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2], "f32");
 * using x = backend.fromHost(new Float32Array([1, 1]), [1, 2], "f32");
 * using dy = backend.fromHost(new Float32Array([1, 0]), [1, 2], "f32");
 * using dx = backend.empty([1, 2], "f32");
 * linearBackward(backend, x, w, null, null, dy, dx, false);
 * dx.toHost(); // Float32Array [1, 2]
 * ```
 */
export function linearBackward(
  backend: Backend,
  x: FloatTensor,
  w: LinearWeight,
  lora: AppliedLora | null,
  xa: Tensor<"f32"> | null,
  dy: FloatTensor,
  dx: FloatTensor | null,
  accumulate: boolean,
): void {
  if (dx) {
    if (w instanceof Tensor) gemm(backend, dy, w, dx, { beta: accumulate ? 1 : 0 });
    else nf4GemmDx(backend, dy, w, dx, accumulate);
  }
  if (lora) {
    if (!xa) throw new Error(`linearBackward: ${lora.module.name} has an adapter but no xa buffer was planned`);
    const { dA, dB } = lora.module;
    loraBackward(backend, x, lora.adapter, xa, dy, dx ? { dA, dB, dx } : { dA, dB });
  }
}
