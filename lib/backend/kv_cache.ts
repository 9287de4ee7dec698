/**
 * The KV cache of one layer for decoding, and attention of one new token per
 * sequence over it. Layout [maxSeqs, nKvHeads, maxLen, headDim] per tensor:
 * slot s holds sequence s of the batch.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel, sameDtype } from "./op_checks.ts";
import type { PackedBatch } from "./packed.ts";
import type { Tensor } from "./tensor.ts";

/** Sizes of a {@link KvCache}. */
export interface KvCacheShape {
  /** Sequences decoded together (one slot each). */
  maxSeqs: number;
  /** Positions per slot (prompt plus generated tokens). */
  maxLen: number;
  /** Key / value heads. */
  nKvHeads: number;
  /** Size of one head. */
  headDim: number;
  /** Storage type (default f32). */
  dtype?: "f32" | "bf16";
}

/**
 * One layer's cached keys and values. The lengths per slot are the caller's
 * (one int32 tensor shared by every layer), so appends and decodes take them.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { KvCache } from "./kv_cache.ts";
 * using backend = await openBackend("cpu");
 * using cache = new KvCache(backend, { maxSeqs: 2, maxLen: 16, nKvHeads: 1, headDim: 8 });
 * cache.k.shape; // [2, 1, 16, 8]
 * ```
 */
export class KvCache implements Disposable {
  /** Sizes. */
  readonly shape: Required<KvCacheShape>;
  /** Cached keys [maxSeqs, nKvHeads, maxLen, headDim]. */
  readonly k: Tensor<"f32" | "bf16">;
  /** Cached values, the layout of k. */
  readonly v: Tensor<"f32" | "bf16">;

  /** Allocates an empty cache. */
  constructor(backend: Backend, shape: KvCacheShape) {
    this.shape = { ...shape, dtype: shape.dtype ?? "f32" };
    const dims = [shape.maxSeqs, shape.nKvHeads, shape.maxLen, shape.headDim];
    this.k = backend.empty(dims, this.shape.dtype);
    this.v = backend.empty(dims, this.shape.dtype);
  }

  /** Frees both tensors. */
  [Symbol.dispose](): void {
    this.k.free();
    this.v.free();
  }
}

/**
 * Writes the packed new keys and values k, v [T, nKvHeads, headDim] of
 * sequence s at positions cacheLens[s] … of slot s. cacheLens (int32
 * [numSeqs], the lengths before the append) is not advanced here.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { KvCache, kvCacheAppend } from "./kv_cache.ts";
 * import { PackedBatch } from "./packed.ts";
 * using backend = await openBackend("cpu");
 * using cache = new KvCache(backend, { maxSeqs: 1, maxLen: 4, nKvHeads: 1, headDim: 8 });
 * using batch = PackedBatch.fromLengths(backend, [2]);
 * using lens = backend.fromHost(new Int32Array([0]), [1], "i32");
 * using kv = backend.fromHost(new Float32Array(16).fill(1), [2, 8], "f32");
 * kvCacheAppend(backend, cache, batch, lens, kv, kv);
 * cache.k.toHost()[15]; // 1: positions 0 and 1 are written
 * ```
 */
export function kvCacheAppend(
  backend: Backend,
  cache: KvCache,
  batch: PackedBatch,
  cacheLens: Tensor<"i32">,
  k: FloatTensor,
  v: FloatTensor,
): void {
  const { maxSeqs, maxLen, nKvHeads, headDim, dtype } = cache.shape;
  if (batch.numSeqs > maxSeqs) throw new RangeError(`${batch.numSeqs} sequences do not fit ${maxSeqs} cache slots`);
  expectNumel(cacheLens, batch.numSeqs, "cacheLens");
  expectNumel(k, batch.T * nKvHeads * headDim, "k");
  expectNumel(v, batch.T * nKvHeads * headDim, "v");
  const kvDtype = sameDtype({ k, v });
  backend.check(
    backend.lib.symbols.lorac_kv_cache_append(
      backend.ctx,
      batch.numSeqs,
      batch.cuSeqlens.ptr,
      batch.T,
      cacheLens.ptr,
      maxLen,
      nKvHeads,
      headDim,
      k.ptr,
      v.ptr,
      dtypeCode[kvDtype],
      cache.k.ptr,
      cache.v.ptr,
      dtypeCode[dtype],
    ),
  );
}

/**
 * Attention of one new query per sequence, q and out [numSeqs, nHeads,
 * headDim], over the first cacheLens[s] (>= 1, the new token included)
 * cached positions of each slot.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { decodeAttention, KvCache, kvCacheAppend } from "./kv_cache.ts";
 * import { PackedBatch } from "./packed.ts";
 * using backend = await openBackend("cpu");
 * using cache = new KvCache(backend, { maxSeqs: 1, maxLen: 4, nKvHeads: 1, headDim: 8 });
 * using batch = PackedBatch.fromLengths(backend, [1]);
 * using before = backend.fromHost(new Int32Array([0]), [1], "i32");
 * using kv = backend.fromHost(new Float32Array(8).fill(2), [1, 8], "f32");
 * kvCacheAppend(backend, cache, batch, before, kv, kv);
 * using after = backend.fromHost(new Int32Array([1]), [1], "i32");
 * using out = backend.empty([1, 8], "f32");
 * decodeAttention(backend, cache, after, kv, out, 1);
 * out.toHost()[0]; // 2: one cached position, weight 1
 * ```
 */
export function decodeAttention(
  backend: Backend,
  cache: KvCache,
  cacheLens: Tensor<"i32">,
  q: FloatTensor,
  out: FloatTensor,
  nHeads: number,
  scale: number = 1 / Math.sqrt(cache.shape.headDim),
): void {
  const { maxLen, nKvHeads, headDim, dtype } = cache.shape;
  const numSeqs = cacheLens.numel;
  if (numSeqs > cache.shape.maxSeqs) {
    throw new RangeError(`${numSeqs} sequences do not fit ${cache.shape.maxSeqs} slots`);
  }
  expectNumel(q, numSeqs * nHeads * headDim, "q");
  expectNumel(out, q.numel, "out");
  const qDtype = sameDtype({ q, out });
  backend.check(
    backend.lib.symbols.lorac_decode_attention(
      backend.ctx,
      numSeqs,
      cacheLens.ptr,
      maxLen,
      nHeads,
      nKvHeads,
      headDim,
      scale,
      q.ptr,
      cache.k.ptr,
      cache.v.ptr,
      dtypeCode[dtype],
      out.ptr,
      dtypeCode[qDtype],
    ),
  );
}
