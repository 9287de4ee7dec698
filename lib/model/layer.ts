/**
 * The two blocks of a Llama decoder layer, llm.c style: each `<block>Forward`
 * writes the activations its `<block>Backward` reads, and the backward carries
 * the residual stream's gradient down while adding into the LoRA gradients.
 *
 *   attention: mid = x + o_proj(attend(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = rmsnorm(x)
 *   MLP:       out = mid + down_proj(silu(gate_proj(n)) · up_proj(n)),                n = rmsnorm(mid)
 *
 * Every projection is the frozen base plus its LoRA adapter when it has one.
 * `attend` is causal attention over the packed batch in training and prefill,
 * or attention over the KV cache when decoding (generate.ts).
 *
 * @module
 */

import { attentionBackward, type AttentionHeads } from "../backend/attention.ts";
import type { Backend } from "../backend/backend.ts";
import type { LoraAdapter } from "../backend/lora.ts";
import { rmsnormBackward, rmsnormForward } from "../backend/norm.ts";
import type { PackedBatch } from "../backend/packed.ts";
import { type RopeAngles, ropeBackward, ropeForward } from "../backend/rope.ts";
import { swigluBackward, swigluForward } from "../backend/swiglu.ts";
import type { Tensor } from "../backend/tensor.ts";
import type { AttentionActs, GradScratch, MlpActs } from "./activations.ts";
import { type AppliedLora, linearBackward, linearForward } from "./linear.ts";
import type { LoraModule, LoraParams } from "./lora_params.ts";
import type { LayerWeights, LinearName } from "./weights.ts";

/** One layer's frozen weights and its adapters by projection. */
export interface LayerParams {
  /** The frozen base. */
  readonly weights: LayerWeights;
  /** The adapted projections. */
  readonly lora: Partial<Record<LinearName, LoraModule>>;
}

/** What every block of one forward shares. */
export interface BlockContext {
  /** The backend. */
  readonly backend: Backend;
  /** Head layout. */
  readonly heads: AttentionHeads;
  /** RMSNorm epsilon. */
  readonly eps: number;
  /** The packed batch (cu_seqlens) of this forward. */
  readonly batch: PackedBatch;
  /** RoPE positions and inverse frequencies. */
  readonly angles: RopeAngles;
  /** The adapters with this forward's dropout, by module name; null: no dropout. */
  readonly dropout: ReadonlyMap<string, LoraAdapter> | null;
}

/** Attention of the block's q [T, nHeads·headDim] over k, v into out (the o_proj input). */
export type Attend = (q: Tensor<"f32">, k: Tensor<"f32">, v: Tensor<"f32">, out: Tensor<"f32">) => void;

const MASK64 = (1n << 64n) - 1n;

function splitmix64(x: bigint): bigint {
  let z = (x + 0x9E3779B97F4A7C15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * Each module's adapter with dropout p and its own mask seed, derived from
 * the forward's seed and the module's index so that no two masks correlate.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { dropoutSeeds } from "./layer.ts";
 * import { LoraParams } from "./lora_params.ts";
 * using backend = await openBackend("cpu");
 * using lora = LoraParams.create(backend, await readLlamaConfig("../shared/models/stories260K/hf"), {}, 0);
 * const seeds = dropoutSeeds(lora, 7n, 0.1);
 * seeds.get("model.layers.0.self_attn.q_proj")!.dropout; // 0.1
 * ```
 */
export function dropoutSeeds(lora: LoraParams, seed: bigint, p: number): Map<string, LoraAdapter> {
  const base = splitmix64(seed & MASK64);
  return new Map(
    lora.modules.map((m, i) => [m.name, { ...m.adapter, dropout: p, seed: splitmix64(base ^ splitmix64(BigInt(i))) }]),
  );
}

function applied(ctx: BlockContext, p: LayerParams, name: LinearName): AppliedLora | null {
  const module = p.lora[name];
  if (!module) return null;
  return { module, adapter: ctx.dropout?.get(module.name) ?? module.adapter };
}

function project(ctx: BlockContext, p: LayerParams, name: LinearName, x: Tensor<"f32">, xa: AttentionActs["xa"]) {
  return (y: Tensor<"f32">, accumulate = false) =>
    linearForward(ctx.backend, x, p.weights.linear[name], applied(ctx, p, name), xa[name] ?? null, y, accumulate);
}

function projectBack(ctx: BlockContext, p: LayerParams, name: LinearName, x: Tensor<"f32">, xa: AttentionActs["xa"]) {
  return (dy: Tensor<"f32">, dx: Tensor<"f32"> | null, accumulate = false) =>
    linearBackward(ctx.backend, x, p.weights.linear[name], applied(ctx, p, name), xa[name] ?? null, dy, dx, accumulate);
}

/**
 * mid = x + o_proj(attend(…)); keeps the norm output, q and k after RoPE, v,
 * the attention output and the adapters' x·Aᵀ in `a`.
 */
export function attentionBlockForward(
  ctx: BlockContext,
  p: LayerParams,
  x: Tensor<"f32">,
  a: AttentionActs,
  mid: Tensor<"f32">,
  attend: Attend,
): void {
  const b = ctx.backend;
  rmsnormForward(b, x, p.weights.inputLayernorm, a.xn, a.rstd, ctx.eps);
  project(ctx, p, "q_proj", a.xn, a.xa)(a.q);
  project(ctx, p, "k_proj", a.xn, a.xa)(a.k);
  project(ctx, p, "v_proj", a.xn, a.xa)(a.v);
  ropeForward(b, a.q, a.q, ctx.angles, ctx.heads.nHeads);
  ropeForward(b, a.k, a.k, ctx.angles, ctx.heads.nKvHeads);
  attend(a.q, a.k, a.v, a.out);
  b.copy(mid, x);
  project(ctx, p, "o_proj", a.out, a.xa)(mid, true);
}

/**
 * From g.dres = ∂loss/∂mid: adds the adapters' gradients and, when
 * `inputGrad`, turns g.dres into ∂loss/∂x (the first layer needs no input
 * gradient: the embeddings are frozen).
 */
export function attentionBlockBackward(
  ctx: BlockContext,
  p: LayerParams,
  x: Tensor<"f32">,
  a: AttentionActs,
  g: GradScratch,
  inputGrad: boolean,
): void {
  const b = ctx.backend;
  if (!a.lse) throw new Error("attentionBlockBackward: the forward kept no log-sum-exp (an inference plan)");
  projectBack(ctx, p, "o_proj", a.out, a.xa)(g.dres, g.dattn);
  attentionBackward(b, ctx.batch, ctx.heads, a.q, a.k, a.v, a.out, a.lse, {
    dout: g.dattn,
    dq: g.dq,
    dk: g.dk,
    dv: g.dv,
  });
  ropeBackward(b, g.dq, g.dq, ctx.angles, ctx.heads.nHeads);
  ropeBackward(b, g.dk, g.dk, ctx.angles, ctx.heads.nKvHeads);
  const dxn = inputGrad ? g.dxn : null;
  projectBack(ctx, p, "q_proj", a.xn, a.xa)(g.dq, dxn);
  projectBack(ctx, p, "k_proj", a.xn, a.xa)(g.dk, dxn, true);
  projectBack(ctx, p, "v_proj", a.xn, a.xa)(g.dv, dxn, true);
  if (inputGrad) rmsnormBackward(b, x, p.weights.inputLayernorm, a.rstd, g.dxn, g.dres, true);
}

/** out = mid + down_proj(silu(gate_proj(n)) · up_proj(n)); keeps n, gate, up, their product and x·Aᵀ in `a`. */
export function mlpBlockForward(
  ctx: BlockContext,
  p: LayerParams,
  mid: Tensor<"f32">,
  a: MlpActs,
  out: Tensor<"f32">,
): void {
  const b = ctx.backend;
  rmsnormForward(b, mid, p.weights.postAttentionLayernorm, a.xn, a.rstd, ctx.eps);
  project(ctx, p, "gate_proj", a.xn, a.xa)(a.gate);
  project(ctx, p, "up_proj", a.xn, a.xa)(a.up);
  swigluForward(b, a.gate, a.up, a.act);
  b.copy(out, mid);
  project(ctx, p, "down_proj", a.act, a.xa)(out, true);
}

/** From g.dres = ∂loss/∂out: adds the adapters' gradients and turns g.dres into ∂loss/∂mid. */
export function mlpBlockBackward(
  ctx: BlockContext,
  p: LayerParams,
  mid: Tensor<"f32">,
  a: MlpActs,
  g: GradScratch,
): void {
  const b = ctx.backend;
  projectBack(ctx, p, "down_proj", a.act, a.xa)(g.dres, g.dact);
  swigluBackward(b, a.gate, a.up, g.dact, g.dgate, g.dup);
  projectBack(ctx, p, "gate_proj", a.xn, a.xa)(g.dgate, g.dxn);
  projectBack(ctx, p, "up_proj", a.xn, a.xa)(g.dup, g.dxn, true);
  rmsnormBackward(b, mid, p.weights.postAttentionLayernorm, a.rstd, g.dxn, g.dres, true);
}
