/**
 * Causal grouped-query attention over a packed batch (no padding, no
 * attention across sequences), flash-attention style: the forward keeps the
 * log-sum-exp [nHeads, T], the backward recomputes the probabilities.
 *
 * Layouts (cuda/lorac.h): q and out [T, nHeads, headDim], k and v
 * [T, nKvHeads, headDim], as the q/k/v projections produce them.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel, sameDtype } from "./op_checks.ts";
import type { PackedBatch } from "./packed.ts";
import type { Tensor } from "./tensor.ts";

/** Head layout of one attention layer. */
export interface AttentionHeads {
  /** Query heads. */
  nHeads: number;
  /** Key / value heads; nHeads is a multiple of it. */
  nKvHeads: number;
  /** Size of one head, even, 8..128. */
  headDim: number;
  /** Score scale, default 1 / sqrt(headDim). */
  scale?: number;
}

function checkQkv(batch: PackedBatch, heads: AttentionHeads, q: FloatTensor, k: FloatTensor, v: FloatTensor): void {
  const { nHeads, nKvHeads, headDim } = heads;
  expectNumel(q, batch.T * nHeads * headDim, "q");
  expectNumel(k, batch.T * nKvHeads * headDim, "k");
  expectNumel(v, batch.T * nKvHeads * headDim, "v");
}

/**
 * out = softmax(scale · q kᵀ, causal within each sequence) v; lse [nHeads, T]
 * receives the log-sum-exp for the backward (null for inference).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { attentionForward } from "./attention.ts";
 * import { PackedBatch } from "./packed.ts";
 * using backend = await openBackend("cpu");
 * using batch = PackedBatch.fromLengths(backend, [1, 1]);
 * const x = new Float32Array(2 * 8).fill(1);
 * using q = backend.fromHost(x, [2, 8], "f32");
 * using out = backend.empty([2, 8], "f32");
 * attentionForward(backend, batch, { nHeads: 1, nKvHeads: 1, headDim: 8 }, q, q, q, out, null);
 * out.toHost()[0]; // 1: a one-token sequence attends only to itself
 * ```
 */
export function attentionForward(
  backend: Backend,
  batch: PackedBatch,
  heads: AttentionHeads,
  q: FloatTensor,
  k: FloatTensor,
  v: FloatTensor,
  out: FloatTensor,
  lse: Tensor<"f32"> | null,
): void {
  checkQkv(batch, heads, q, k, v);
  expectNumel(out, q.numel, "out");
  if (lse) expectNumel(lse, heads.nHeads * batch.T, "lse");
  const dtype = sameDtype({ q, k, v, out });
  backend.check(
    backend.lib.symbols.lorac_attention_forward(
      backend.ctx,
      batch.numSeqs,
      batch.cuSeqlens.ptr,
      batch.maxSeqlen,
      batch.T,
      heads.nHeads,
      heads.nKvHeads,
      heads.headDim,
      heads.scale ?? 1 / Math.sqrt(heads.headDim),
      q.ptr,
      k.ptr,
      v.ptr,
      dtypeCode[dtype],
      out.ptr,
      lse?.ptr ?? null,
    ),
  );
}

/** Inputs and outputs of {@link attentionBackward}. */
export interface AttentionGrads {
  /** ∂loss/∂out, the layout of out. */
  dout: FloatTensor;
  /** Receives ∂loss/∂q [T, nHeads, headDim]. */
  dq: FloatTensor;
  /** Receives ∂loss/∂k [T, nKvHeads, headDim] (query heads of a group summed). */
  dk: FloatTensor;
  /** Receives ∂loss/∂v [T, nKvHeads, headDim]. */
  dv: FloatTensor;
}

/**
 * The gradients of {@link attentionForward}, recomputed from q, k, v, out and
 * its lse; dq, dk and dv are overwritten.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { attentionBackward, attentionForward } from "./attention.ts";
 * import { PackedBatch } from "./packed.ts";
 * using backend = await openBackend("cpu");
 * using batch = PackedBatch.fromLengths(backend, [2]);
 * const heads = { nHeads: 1, nKvHeads: 1, headDim: 8 };
 * using x = backend.fromHost(new Float32Array(16).map((_, i) => i / 16), [2, 8], "f32");
 * using out = backend.empty([2, 8], "f32");
 * using lse = backend.empty([1, 2], "f32");
 * attentionForward(backend, batch, heads, x, x, x, out, lse);
 * using dout = backend.fromHost(new Float32Array(16).fill(1), [2, 8], "f32");
 * using dq = backend.empty([2, 8], "f32");
 * using dk = backend.empty([2, 8], "f32");
 * using dv = backend.empty([2, 8], "f32");
 * attentionBackward(backend, batch, heads, x, x, x, out, lse, { dout, dq, dk, dv });
 * dv.toHost().reduce((a, b) => a + b); // 16: every probability row sums to 1
 * ```
 */
export function attentionBackward(
  backend: Backend,
  batch: PackedBatch,
  heads: AttentionHeads,
  q: FloatTensor,
  k: FloatTensor,
  v: FloatTensor,
  out: FloatTensor,
  lse: Tensor<"f32">,
  grads: AttentionGrads,
): void {
  checkQkv(batch, heads, q, k, v);
  const { dout, dq, dk, dv } = grads;
  expectNumel(out, q.numel, "out");
  expectNumel(dout, q.numel, "dout");
  expectNumel(dq, q.numel, "dq");
  expectNumel(dk, k.numel, "dk");
  expectNumel(dv, v.numel, "dv");
  expectNumel(lse, heads.nHeads * batch.T, "lse");
  const dtype = sameDtype({ q, k, v, out, dout, dq, dk, dv });
  const bytes = new BigInt64Array(1);
  backend.check(
    backend.lib.symbols.lorac_attention_backward_workspace(
      backend.ctx,
      batch.numSeqs,
      batch.maxSeqlen,
      batch.T,
      heads.nHeads,
      heads.nKvHeads,
      heads.headDim,
      bytes,
    ),
  );
  using workspace = bytes[0] > 0n ? backend.empty([Number(bytes[0])], "u8") : null;
  backend.check(
    backend.lib.symbols.lorac_attention_backward(
      backend.ctx,
      batch.numSeqs,
      batch.cuSeqlens.ptr,
      batch.maxSeqlen,
      batch.T,
      heads.nHeads,
      heads.nKvHeads,
      heads.headDim,
      heads.scale ?? 1 / Math.sqrt(heads.headDim),
      q.ptr,
      k.ptr,
      v.ptr,
      out.ptr,
      dout.ptr,
      dtypeCode[dtype],
      lse.ptr,
      dq.ptr,
      dk.ptr,
      dv.ptr,
      workspace?.ptr ?? null,
      bytes[0],
    ),
  );
}
