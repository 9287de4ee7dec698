/**
 * AdamW with torch.optim.AdamW's semantics over one flat fp32 buffer
 * [params | grads | m | v], with global-norm gradient clipping.
 *
 * One departure from torch: a step whose gradient norm is not finite (a NaN
 * or infinite gradient) changes nothing, where torch would write NaN into
 * every parameter and moment. The norm is computed and read on the host
 * before the update is launched, so the check costs no extra pass.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import type { Tensor } from "./tensor.ts";

/** Hyperparameters; the defaults are torch.optim.AdamW's. */
export interface AdamWConfig {
  /** Learning rate of this step. */
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay, default 0.01. */
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 or less: no clipping). */
  maxGradNorm?: number;
}

/** The flat optimiser state of n trainable parameters. */
export class AdamWState implements Disposable {
  /** [4, n]: params, grads, first and second moments. */
  readonly buffer: Tensor<"f32">;
  /** The last computed gradient norm, shape [1]. */
  readonly norm: Tensor<"f32">;
  /** Number of trainable parameters. */
  readonly n: number;
  /** Steps taken so far. */
  step = 0;
  readonly #backend: Backend;

  /** Zeroed state for n parameters. */
  constructor(backend: Backend, n: number) {
    this.#backend = backend;
    this.n = n;
    this.buffer = backend.filled([4, n], "f32");
    this.norm = backend.filled([1], "f32");
  }

  /** Device pointer to section 0 (params), 1 (grads), 2 (m) or 3 (v). */
  section(i: 0 | 1 | 2 | 3): Deno.PointerObject {
    return Deno.UnsafePointer.offset(this.buffer.ptr, i * this.n * 4) as Deno.PointerObject;
  }

  /** Computes the global gradient norm into `norm` and returns it. */
  gradNorm(): number {
    return this.#normOf(1);
  }

  /** The L2 norm of all parameters: finite exactly when every parameter is (fp32 squares aside). */
  paramNorm(): number {
    return this.#normOf(0);
  }

  #normOf(section: 0 | 1): number {
    const b = this.#backend;
    b.check(b.lib.symbols.lorac_global_norm(b.ctx, this.section(section), BigInt(this.n), this.norm.ptr));
    return this.norm.toHost()[0];
  }

  /**
   * One AdamW step (clipping first when maxGradNorm > 0); returns the
   * gradient norm before clipping. When that norm is not finite (a NaN or
   * infinite gradient, or squares beyond fp32's range) the step is not
   * taken: parameters, gradients, moments and the step count stay as they
   * were, and the caller sees the non-finite norm (to stop, or to skip).
   *
   * @example
   * ```ts
   * import { openBackend } from "./backend.ts";
   * import { AdamWState } from "./adamw.ts";
   * using backend = await openBackend("cpu");
   * using opt = new AdamWState(backend, 2);
   * backend.write(opt.buffer, new Float32Array([1, 1, 0.5, -0.5, 0, 0, 0, 0]));
   * opt.update({ lr: 0.1, weightDecay: 0 });
   * opt.buffer.toHost().slice(0, 2); // ≈ Float32Array [0.9, 1.1]
   * backend.write(opt.buffer, new Float32Array([1, 1, NaN, 0, 0, 0, 0, 0]));
   * opt.update({ lr: 0.1 }); // NaN, and nothing changed
   * opt.step; // 1
   * ```
   */
  update(config: AdamWConfig): number {
    const b = this.#backend;
    const norm = this.gradNorm();
    if (!Number.isFinite(norm)) return norm;
    this.step++;
    b.check(b.lib.symbols.lorac_adamw_step(
      b.ctx,
      this.buffer.ptr,
      BigInt(this.n),
      config.lr,
      config.beta1 ?? 0.9,
      config.beta2 ?? 0.999,
      config.eps ?? 1e-8,
      config.weightDecay ?? 0.01,
      this.step,
      this.norm.ptr,
      config.maxGradNorm ?? 0,
    ));
    return norm;
  }

  /** Frees the state. */
  [Symbol.dispose](): void {
    this.buffer.free();
    this.norm.free();
  }
}
