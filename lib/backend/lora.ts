/**
 * LoRA around a frozen base linear, with PEFT's semantics:
 * y = W x + (B (A dropout(x))) · scale, A [r, in], B [out, r], both fp32.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import type { Tensor } from "./tensor.ts";

/** One adapter's trainable matrices and how they are applied. */
export interface LoraAdapter {
  /** [r, in] fp32. */
  A: Tensor<"f32">;
  /** [out, r] fp32. */
  B: Tensor<"f32">;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA (see {@link loraScale}). */
  scale: number;
  /** Dropout probability on the adapter's input (0 = none). */
  dropout: number;
  /** Seed of this step's dropout mask (the backward must use the same). */
  seed: bigint;
}

/**
 * PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA.
 *
 * @example
 * ```ts
 * import { loraScale } from "./lora.ts";
 * loraScale(16, 8); // 2
 * loraScale(16, 16, true); // 4
 * ```
 */
export function loraScale(alpha: number, r: number, rslora = false): number {
  if (!(r > 0)) throw new RangeError(`LoRA rank r must be positive, got ${r}`);
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

function loraDims(x: FloatTensor, lora: LoraAdapter): { M: number; K: number; N: number; r: number } {
  const [M, K] = x.shape;
  const [r, Ka] = lora.A.shape;
  const [N, rb] = lora.B.shape;
  if (x.shape.length !== 2 || Ka !== K || rb !== r) {
    throw new RangeError(`LoRA shapes do not fit: X [${x.shape}], A [${lora.A.shape}], B [${lora.B.shape}]`);
  }
  if (!(lora.dropout >= 0 && lora.dropout < 1)) {
    throw new RangeError(`LoRA dropout must be in [0, 1), got ${lora.dropout}`);
  }
  return { M, K, N, r };
}

/**
 * Y[M,N] += scale·(drop(X)·Aᵀ)·Bᵀ; xa [M,r] receives drop(X)·Aᵀ for the backward.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { loraForward } from "./lora.ts";
 * using backend = await openBackend("cpu");
 * using x = backend.fromHost(new Float32Array([1, 2]), [1, 2], "f32");
 * using A = backend.fromHost(new Float32Array([1, 1]), [1, 2], "f32");
 * using B = backend.fromHost(new Float32Array([1, 2, 3]), [3, 1], "f32");
 * using xa = backend.empty([1, 1], "f32");
 * using y = backend.filled([1, 3], "f32");
 * loraForward(backend, x, { A, B, scale: 2, dropout: 0, seed: 0n }, xa, y);
 * y.toHost(); // Float32Array [6, 12, 18]
 * ```
 */
export function loraForward(
  backend: Backend,
  x: FloatTensor,
  lora: LoraAdapter,
  xa: Tensor<"f32">,
  y: FloatTensor,
): void {
  const { M, K, N, r } = loraDims(x, lora);
  if (xa.numel !== M * r || y.numel !== M * N) {
    throw new RangeError(`loraForward: XA must be [${M}, ${r}] and Y [${M}, ${N}], got [${xa.shape}] and [${y.shape}]`);
  }
  backend.check(backend.lib.symbols.lorac_lora_forward(
    backend.ctx,
    M,
    N,
    K,
    r,
    x.ptr,
    dtypeCode[x.dtype],
    lora.A.ptr,
    lora.B.ptr,
    lora.scale,
    lora.dropout,
    lora.seed,
    xa.ptr,
    y.ptr,
    dtypeCode[y.dtype],
  ));
}

/** Gradients of {@link loraForward}: dA += …, dB += …, and dX += … when dx is given. */
export function loraBackward(
  backend: Backend,
  x: FloatTensor,
  lora: LoraAdapter,
  xa: Tensor<"f32">,
  dy: FloatTensor,
  grads: { dA: Tensor<"f32">; dB: Tensor<"f32">; dx?: FloatTensor },
): void {
  const { M, K, N, r } = loraDims(x, lora);
  if (dy.numel !== M * N || grads.dA.numel !== r * K || grads.dB.numel !== N * r) {
    throw new RangeError(`loraBackward: dY [${dy.shape}], dA [${grads.dA.shape}], dB [${grads.dB.shape}] do not fit`);
  }
  if (grads.dx && grads.dx.numel !== M * K) throw new RangeError(`loraBackward: dX must be [${M}, ${K}]`);
  backend.check(backend.lib.symbols.lorac_lora_backward(
    backend.ctx,
    M,
    N,
    K,
    r,
    x.ptr,
    dtypeCode[x.dtype],
    lora.A.ptr,
    lora.B.ptr,
    lora.scale,
    lora.dropout,
    lora.seed,
    xa.ptr,
    dy.ptr,
    dtypeCode[dy.dtype],
    grads.dA.ptr,
    grads.dB.ptr,
    grads.dx?.ptr ?? null,
    dtypeCode[grads.dx?.dtype ?? "f32"],
  ));
}
