/**
 * Batched inference with a KV cache: a prefill runs several prompts packed
 * end to end (causal attention within each, as in training) and stores their
 * keys and values in one cache slot per prompt; each decode step then runs
 * one new token per slot, attending over that slot's cache. After either, the
 * caller asks for the logits of some rows or the log-probabilities of given
 * tokens at some rows, computed with the rest of the forward in one go.
 *
 * The adapters apply without dropout. Activation memory is planned per call
 * size and reused like the training forward's.
 *
 * @module
 */

import { attentionForward } from "../backend/attention.ts";
import { linearCrossEntropy, linearLogits } from "../backend/cross_entropy.ts";
import { embedding } from "../backend/embedding.ts";
import { decodeAttention, KvCache, kvCacheAppend } from "../backend/kv_cache.ts";
import { rmsnormForward } from "../backend/norm.ts";
import { cuSeqlensOf } from "../backend/packed.ts";
import type { Tensor } from "../backend/tensor.ts";
import { Activations, type PlannedActivations } from "./activations.ts";
import { attentionBlockForward, type BlockContext, mlpBlockForward } from "./layer.ts";
import type { LlamaModel } from "./llama.ts";

/** Sizes of an {@link InferenceSession}'s cache. */
export interface SessionShape {
  /** Cache slots: sequences decoded together. */
  maxSeqs: number;
  /** Positions per slot: prompt plus generated or scored tokens. */
  maxLen: number;
  /** Storage of the cached keys and values (default f32). */
  cacheDtype?: "f32" | "bf16";
}

/** What a run returns: the logits of some rows, or the log-probabilities of given tokens at some rows. */
export type OutputRequest =
  | { readonly rows: ArrayLike<number>; readonly tokens?: undefined }
  | { readonly rows: ArrayLike<number>; readonly tokens: ArrayLike<number> };

/**
 * A model's KV caches (one per layer) and the runs that fill them.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { InferenceSession } from "./inference.ts";
 * import { LlamaModel } from "./llama.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * using session = new InferenceSession(model, { maxSeqs: 1, maxLen: 16 });
 * const logits = session.prefill([[1, 403, 407, 261, 378]], { rows: [4] }); // [1, 512]
 * const next = logits.indexOf(Math.max(...logits)); // 432, as reference_outputs.json says
 * session.decode([next], { rows: [0] });
 * session.lengths; // Int32Array [6]
 * ```
 */
export class InferenceSession implements Disposable {
  /** Tokens cached in each slot. */
  readonly lengths: Int32Array;
  /** The cache sizes. */
  readonly shape: Required<SessionShape>;
  readonly #model: LlamaModel;
  readonly #caches: KvCache[];
  readonly #acts: Activations;

  /** Allocates the caches of every layer. */
  constructor(model: LlamaModel, shape: SessionShape) {
    const c = model.config;
    this.#model = model;
    this.shape = { ...shape, cacheDtype: shape.cacheDtype ?? "f32" };
    this.lengths = new Int32Array(shape.maxSeqs);
    const cacheShape = { ...this.shape, nKvHeads: c.numKvHeads, headDim: c.headDim, dtype: this.shape.cacheDtype };
    this.#caches = [];
    try {
      for (let l = 0; l < c.numLayers; l++) this.#caches.push(new KvCache(model.backend, cacheShape));
    } catch (e) {
      for (const cache of this.#caches) cache[Symbol.dispose]();
      throw e;
    }
    this.#acts = new Activations(model.backend, c, model.lora, "inference");
  }

  /** Empties every slot. */
  reset(): void {
    this.lengths.fill(0);
  }

  /**
   * Runs prompt s into slot s (each slot must be empty: call reset() first)
   * and returns the requested output; rows index the packed prompts' tokens.
   */
  prefill(prompts: readonly ArrayLike<number>[], out: OutputRequest): Float32Array {
    this.#checkSlots(prompts.length);
    prompts.forEach((p, s) => {
      if (this.lengths[s] !== 0) throw new Error(`prefill: slot ${s} holds ${this.lengths[s]} tokens; reset() first`);
      if (p.length === 0 || p.length > this.shape.maxLen) {
        throw new RangeError(`prefill: prompt ${s} has ${p.length} tokens; a slot holds 1 to ${this.shape.maxLen}`);
      }
    });
    const cu = cuSeqlensOf(prompts.map((p) => p.length));
    const tokens = new Int32Array(cu[prompts.length]);
    prompts.forEach((p, s) => tokens.set(Array.from(p), cu[s]));
    return this.#run(tokens, cu, null, out);
  }

  /** Runs token s in slot s for s < tokens.length and returns the requested output (row s is slot s). */
  decode(tokens: ArrayLike<number>, out: OutputRequest): Float32Array {
    const n = tokens.length;
    this.#checkSlots(n);
    for (let s = 0; s < n; s++) {
      if (this.lengths[s] === 0) throw new Error(`decode: slot ${s} is empty; prefill it first`);
      if (this.lengths[s] >= this.shape.maxLen) {
        throw new RangeError(`decode: slot ${s} is full (${this.shape.maxLen})`);
      }
    }
    const cu = Int32Array.from({ length: n + 1 }, (_, s) => s);
    return this.#run(Int32Array.from(tokens), cu, this.lengths.slice(0, n), out);
  }

  /** Copies slot `from`'s cache (every layer) and length into slot `to`. */
  copySlot(from: number, to: number): void {
    this.#checkSlots(Math.max(from, to) + 1);
    const b = this.#model.backend;
    for (const cache of this.#caches) {
      const bytes = cache.k.bytes / this.shape.maxSeqs;
      for (const t of [cache.k, cache.v]) {
        const src = Deno.UnsafePointer.offset(t.ptr, from * bytes);
        const dst = Deno.UnsafePointer.offset(t.ptr, to * bytes);
        b.check(b.lib.symbols.lorac_copy_d2d(b.ctx, dst, src, BigInt(bytes)));
      }
    }
    this.lengths[to] = this.lengths[from];
  }

  #checkSlots(n: number): void {
    if (n < 1 || n > this.shape.maxSeqs) {
      throw new RangeError(`${n} slots asked for; the session has ${this.shape.maxSeqs}`);
    }
  }

  /** One forward; `before` is null for a prefill (positions restart per prompt) or the slots' lengths when decoding. */
  #run(tokens: Int32Array, cu: Int32Array, before: Int32Array | null, out: OutputRequest): Float32Array {
    const model = this.#model;
    const b = model.backend;
    const numSeqs = cu.length - 1;
    const lensBefore = before ?? new Int32Array(numSeqs);
    const lensAfter = Int32Array.from(lensBefore, (len, s) => len + cu[s + 1] - cu[s]);
    const rows = Int32Array.from(out.rows);
    if (rows.some((r) => !(r >= 0 && r < tokens.length))) {
      throw new RangeError(`output rows must lie in [0, ${tokens.length}), got [${rows}]`);
    }
    const acts = this.#acts.plan(tokens.length, numSeqs, rows.length);
    acts.upload({
      tokens,
      cuSeqlens: cu,
      rows,
      targets: out.tokens ? Int32Array.from(out.tokens) : undefined,
      positions: before ?? undefined,
      lensBefore,
      lensAfter,
    });
    const ctx: BlockContext = {
      backend: b,
      heads: model.heads,
      eps: model.config.rmsNormEps,
      batch: acts.batch,
      angles: { positions: acts.batch.positions, invFreq: model.invFreq },
      dropout: null,
    };
    embedding(b, acts.ints.tokens, model.weights.embeddings, acts.residual(0));
    for (let l = 0; l < model.config.numLayers; l++) {
      const a = acts.layer(l);
      const cache = this.#caches[l];
      const attend = (q: Tensor<"f32">, k: Tensor<"f32">, v: Tensor<"f32">, o: Tensor<"f32">) => {
        kvCacheAppend(b, cache, acts.batch, acts.ints.lensBefore, k, v);
        if (before) decodeAttention(b, cache, acts.ints.lensAfter, q, o, model.heads.nHeads);
        else attentionForward(b, acts.batch, model.heads, q, k, v, o, null);
      };
      attentionBlockForward(ctx, model.layers[l], acts.residual(l), a.attn, a.mid, attend);
      mlpBlockForward(ctx, model.layers[l], a.mid, a.mlp, acts.residual(l + 1));
    }
    this.lengths.set(lensAfter);
    return this.#outputs(acts, rows.length, out.tokens !== undefined);
  }

  #outputs(acts: PlannedActivations, n: number, logprobs: boolean): Float32Array {
    const model = this.#model;
    const b = model.backend;
    const { xn, rstd } = acts.final;
    rmsnormForward(
      b,
      acts.residual(model.config.numLayers),
      model.weights.finalNorm,
      xn,
      rstd,
      model.config.rmsNormEps,
    );
    if (n === 0) return new Float32Array(0);
    if (logprobs) {
      linearCrossEntropy(b, xn, model.weights.lmHead, acts.ints.rows, acts.ints.targets, {
        lossSum: acts.lossSum,
        rowLoss: acts.rowLoss,
      });
      return acts.rowLoss.toHost().map((loss) => -loss);
    }
    const logits = acts.logits!;
    linearLogits(b, xn, model.weights.lmHead, acts.ints.rows, logits);
    return logits.toHost();
  }

  /** Frees the caches and activations. */
  [Symbol.dispose](): void {
    for (const cache of this.#caches) cache[Symbol.dispose]();
    this.#acts[Symbol.dispose]();
  }
}
