/**
 * Float64 reference of torch.optim.AdamW (single-tensor update) preceded by
 * torch.nn.utils.clip_grad_norm_, over flat parameter / gradient / moment arrays.
 *
 * @module
 */

/** Flat optimiser state; the reference updates it in place. */
export interface AdamWRefState {
  /** Parameters. */
  p: Float64Array;
  /** Gradients (clipped in place, as clip_grad_norm_ does). */
  g: Float64Array;
  /** First moments. */
  m: Float64Array;
  /** Second moments. */
  v: Float64Array;
}

/** Hyperparameters of one step. */
export interface AdamWRefConfig {
  /** Learning rate. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Added to the denominator, outside the square root. */
  eps: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Clip the global gradient norm to this; 0 disables clipping. */
  maxGradNorm: number;
}

/**
 * sqrt(Σ g²).
 *
 * @example
 * ```ts
 * import { globalNormRef } from "./adamw.ts";
 * globalNormRef([3, 4]); // 5
 * ```
 */
export function globalNormRef(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/**
 * One step (1-based `step`): clip the gradients by min(1, max_norm/(norm+1e-6)),
 * then p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps). Returns the norm before clipping.
 *
 * @example
 * ```ts
 * import { adamwStepRef } from "./adamw.ts";
 * const s = { p: new Float64Array([1]), g: new Float64Array([0.5]), m: new Float64Array(1), v: new Float64Array(1) };
 * adamwStepRef(s, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0, maxGradNorm: 0 }, 1);
 * s.p[0]; // 0.9 (the first step moves every parameter by lr)
 * ```
 */
export function adamwStepRef(s: AdamWRefState, c: AdamWRefConfig, step: number): number {
  const norm = globalNormRef(s.g);
  const clip = c.maxGradNorm > 0 ? Math.min(1, c.maxGradNorm / (norm + 1e-6)) : 1;
  const bc1 = 1 - c.beta1 ** step;
  const bc2 = 1 - c.beta2 ** step;
  for (let i = 0; i < s.p.length; i++) {
    const g = (s.g[i] *= clip);
    s.m[i] = c.beta1 * s.m[i] + (1 - c.beta1) * g;
    s.v[i] = c.beta2 * s.v[i] + (1 - c.beta2) * g * g;
    const denom = Math.sqrt(s.v[i]) / Math.sqrt(bc2) + c.eps;
    s.p[i] = s.p[i] * (1 - c.lr * c.weightDecay) - (c.lr / bc1) * s.m[i] / denom;
  }
  return norm;
}
