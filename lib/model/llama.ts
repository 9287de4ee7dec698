/**
 * A Llama with LoRA adapters on a frozen base, for training: the forward over
 * a packed batch (embeddings → layers of attention and MLP blocks → final
 * norm → fused lm_head + cross-entropy on the loss rows only) and its
 * hand-written backward, which produces only the LoRA gradients (the base is
 * frozen), accumulated into the grads section of the adapters' AdamW state.
 *
 * One step of training with gradient accumulation looks like:
 *
 * ```ts ignore
 * model.lora!.zeroGrads();
 * for (const batch of microBatches) {                    // each a packBatch(...) of sequences
 *   const { lossSum, count } = model.forward(batch, { dropoutSeed });
 *   model.backward({ gradScale: 1 / tokensInStep });     // loss = mean over the step's loss tokens
 * }
 * model.lora!.state.update({ lr, maxGradNorm: 1 });
 * ```
 *
 * Activation memory is planned once per batch size and reused (it grows when
 * a longer batch comes); `recompute: true` keeps only each layer's input and
 * recomputes the rest during the backward, for long batches. Hidden states
 * are f32. Inference (KV cache, greedy decoding, label scoring) is in
 * generate.ts on top of the same blocks.
 *
 * @module
 */

import type { AttentionHeads } from "../backend/attention.ts";
import { attentionForward } from "../backend/attention.ts";
import type { Backend } from "../backend/backend.ts";
import { linearCrossEntropy, linearLogits } from "../backend/cross_entropy.ts";
import { embedding } from "../backend/embedding.ts";
import { rmsnormBackward, rmsnormForward } from "../backend/norm.ts";
import { addScaled } from "../backend/residual.ts";
import { ropeInvFreq } from "../backend/rope_freqs.ts";
import type { Tensor } from "../backend/tensor.ts";
import { type LlamaConfig, ropeInverseFrequencies } from "../formats/llama_config.ts";
import { Activations, type PlannedActivations } from "./activations.ts";
import { checkBatch, type TrainBatch } from "./batch.ts";
import {
  attentionBlockBackward,
  attentionBlockForward,
  type BlockContext,
  dropoutSeeds,
  type LayerParams,
  mlpBlockBackward,
  mlpBlockForward,
} from "./layer.ts";
import { type LoraOptions, LoraParams } from "./lora_params.ts";
import type { LlamaWeights } from "./weights.ts";

/** Options of {@link LlamaModel}. */
export interface LlamaModelOptions {
  /**
   * The adapters: options of fresh ones (PEFT's initialisation from `loraSeed`;
   * missing fields take DEFAULT_LORA_OPTIONS), existing LoraParams (the model
   * then does not own them), or null for the base model alone (inference).
   * Default: fresh adapters with the default options.
   */
  lora?: Partial<LoraOptions> | LoraParams | null;
  /** Seed of the fresh adapters' initialisation (default 0). */
  loraSeed?: number;
  /** Recompute each layer's activations in the backward instead of keeping them (less memory, ~1/3 more compute). */
  recompute?: boolean;
}

/** Options of {@link LlamaModel.forward}. */
export interface ForwardOptions {
  /**
   * true (default): keep what backward() needs and apply LoRA dropout;
   * false: evaluation (no dropout, and backward() is not allowed).
   */
  training?: boolean;
  /** Seed of this forward's LoRA dropout masks: required when training with dropout > 0. */
  dropoutSeed?: bigint;
  /**
   * Start at layer `layer` from these residual-stream values [T, D] (what
   * {@link LlamaModel.hiddenBefore} returned for the same sequences) instead of
   * running the layers below it; they must hold no adapters.
   */
  hidden?: { readonly layer: number; readonly values: Float32Array };
  /** Also return the likeliest next token of every loss row (`predicted`). */
  argmax?: boolean;
}

/** Options of {@link LlamaModel.backward}. */
export interface BackwardOptions {
  /**
   * Factor on the summed loss being differentiated (default 1 / count of the
   * last forward: the mean over its loss rows). Gradient accumulation over
   * micro-batches passes 1 / (loss rows of the whole step).
   */
  gradScale?: number;
}

/** The summed cross-entropy of a forward and how many rows it sums; the mean loss is lossSum / count. */
export interface LossResult {
  /** Sum over the loss rows of -log p(target). */
  readonly lossSum: number;
  /** Number of loss rows. */
  readonly count: number;
  /** With `argmax: true`: the likeliest next token at each loss row (the first on ties), in lossRows order. */
  readonly predicted?: Int32Array;
}

/**
 * RoPE inverse frequencies of a config as transformers computes them (fp32
 * step by step; llama.cpp's per-frequency factors from a GGUF in float64).
 *
 * @example
 * ```ts
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { invFreqOf } from "./llama.ts";
 * const config = await readLlamaConfig("../shared/models/stories260K/hf");
 * invFreqOf(config).length; // 4 (head_dim 8)
 * ```
 */
export function invFreqOf(config: LlamaConfig): Float32Array {
  const s = config.ropeScaling;
  if (s.type === "frequency_factors") return Float32Array.from(ropeInverseFrequencies(config));
  const base = {
    hidden_size: config.hiddenSize,
    num_attention_heads: config.numHeads,
    head_dim: config.headDim,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
  };
  switch (s.type) {
    case "none":
      return ropeInvFreq(base);
    case "linear":
      return ropeInvFreq({ ...base, rope_scaling: { rope_type: "linear", factor: s.factor } });
    case "llama3":
      return ropeInvFreq({
        ...base,
        rope_scaling: {
          rope_type: "llama3",
          factor: s.factor,
          low_freq_factor: s.lowFreqFactor,
          high_freq_factor: s.highFreqFactor,
          original_max_position_embeddings: s.originalMaxPositionEmbeddings,
        },
      });
  }
}

/**
 * A Llama on a backend with its LoRA adapters, ready to train.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { packBatch } from "./batch.ts";
 * import { LlamaModel } from "./llama.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: { r: 4, alpha: 8 } });
 * const batch = packBatch([{ tokens: [1, 403, 407, 261, 378, 432], completionStart: 4 }]);
 * const { lossSum, count } = model.forward(batch);
 * model.backward(); // d(lossSum / count) into model.lora.state's grads
 * count; // 2
 * ```
 */
export class LlamaModel implements Disposable {
  /** The backend everything runs on. */
  readonly backend: Backend;
  /** The model's shape and constants. */
  readonly config: LlamaConfig;
  /** The frozen base (the caller's: not freed with the model). */
  readonly weights: LlamaWeights;
  /** The adapters and their optimiser state, or null for the base alone. */
  readonly lora: LoraParams | null;
  /** Attention head layout. */
  readonly heads: AttentionHeads;
  /** RoPE inverse frequencies, f32 [headDim / 2] (see {@link invFreqOf}). */
  readonly invFreq: Tensor<"f32">;
  /** Per layer: its weights and adapters, as the blocks of layer.ts take them. */
  readonly layers: readonly LayerParams[];
  readonly #ownsLora: boolean;
  readonly #recompute: boolean;
  #train: Activations | null = null;
  /** The last training forward, until backward() consumes it. */
  #pending: { acts: PlannedActivations; ctx: BlockContext; count: number } | null = null;

  /** Wraps loaded weights; see {@link LlamaModelOptions} for the adapters. */
  constructor(backend: Backend, config: LlamaConfig, weights: LlamaWeights, options: LlamaModelOptions = {}) {
    if (weights.layers.length !== config.numLayers) {
      throw new RangeError(`the weights have ${weights.layers.length} layers; the config says ${config.numLayers}`);
    }
    this.backend = backend;
    this.config = config;
    this.weights = weights;
    const lora = options.lora === undefined ? {} : options.lora;
    this.#ownsLora = lora !== null && !(lora instanceof LoraParams);
    this.lora = lora === null
      ? null
      : lora instanceof LoraParams
      ? lora
      : LoraParams.create(backend, config, lora, options.loraSeed ?? 0);
    this.#recompute = options.recompute ?? false;
    this.heads = { nHeads: config.numHeads, nKvHeads: config.numKvHeads, headDim: config.headDim };
    this.invFreq = backend.fromHost(invFreqOf(config), [config.headDim / 2], "f32");
    this.layers = weights.layers.map((w, l) => ({
      weights: w,
      lora: Object.fromEntries(
        (this.lora?.modules ?? []).filter((m) => m.layer === l).map((m) => [m.linear, m]),
      ),
    }));
  }

  /**
   * The training forward over a packed batch: returns the summed loss over
   * batch.lossRows and their count, and keeps what {@link backward} needs
   * (unless `training: false`).
   */
  forward(batch: TrainBatch, options: ForwardOptions = {}): LossResult {
    checkBatch(batch, this.config.vocabSize);
    const training = options.training ?? true;
    const dropout = training ? this.lora?.options.dropout ?? 0 : 0;
    if (dropout > 0 && options.dropoutSeed === undefined) {
      throw new Error("forward: LoRA dropout is on, so pass a dropoutSeed (a new one per forward, from your RNG)");
    }
    const b = this.backend;
    const acts = this.#begin(batch);
    const ctx = this.#context(acts, dropout > 0 ? dropoutSeeds(this.lora!, options.dropoutSeed!, dropout) : null);
    const start = this.#start(acts, options.hidden);
    for (let l = start; l < this.config.numLayers; l++) this.#layerForward(ctx, acts, l);
    const count = batch.lossRows.length;
    const L = this.config.numLayers;
    rmsnormForward(b, acts.residual(L), this.weights.finalNorm, acts.final.xn, acts.final.rstd, this.config.rmsNormEps);
    if (count === 0) {
      // Nothing to differentiate: backward() then adds no gradient.
      if (training && this.lora) this.#pending = { acts, ctx, count };
      return options.argmax ? { lossSum: 0, count, predicted: new Int32Array(0) } : { lossSum: 0, count };
    }
    if (training) b.check(b.lib.symbols.lorac_memset(b.ctx, acts.final.dxn.ptr, 0, BigInt(acts.final.dxn.bytes)));
    linearCrossEntropy(b, acts.final.xn, this.weights.lmHead, acts.ints.rows, acts.ints.targets, {
      lossSum: acts.lossSum,
      dH: training ? acts.final.dxn : undefined,
    });
    if (training && this.lora) this.#pending = { acts, ctx, count };
    const lossSum = acts.lossSum.toHost()[0];
    return options.argmax ? { lossSum, count, predicted: this.#argmaxRows(acts, count) } : { lossSum, count };
  }

  /**
   * The residual stream entering layer `layer` [T, D] for a batch (no
   * dropout, nothing kept for a backward), copied to the host: what
   * `forward(batch, { hidden: { layer, values } })` starts from. Layers below
   * the lowest adapted one are frozen, so their output can be computed once
   * per example and reused every epoch.
   */
  hiddenBefore(batch: Pick<TrainBatch, "tokens" | "cuSeqlens">, layer: number): Float32Array {
    if (!Number.isInteger(layer) || layer < 0 || layer > this.config.numLayers) {
      throw new RangeError(`hiddenBefore: layer ${layer} is not in [0, ${this.config.numLayers}]`);
    }
    const rowless = { ...batch, lossRows: new Int32Array(0), targets: new Int32Array(0) };
    checkBatch(rowless, this.config.vocabSize);
    const acts = this.#begin(rowless);
    const ctx = this.#context(acts, null);
    this.#start(acts, undefined);
    for (let l = 0; l < layer; l++) this.#layerForward(ctx, acts, l);
    return acts.residual(layer).toHost() as Float32Array;
  }

  /** Drops a pending forward, and plans and uploads a checked batch's activations. */
  #begin(batch: TrainBatch): PlannedActivations {
    this.#pending = null;
    this.#train ??= new Activations(this.backend, this.config, this.lora, this.#recompute ? "recompute" : "train");
    const acts = this.#train.plan(batch.tokens.length, batch.cuSeqlens.length - 1, batch.lossRows.length);
    acts.upload({ tokens: batch.tokens, cuSeqlens: batch.cuSeqlens, rows: batch.lossRows, targets: batch.targets });
    return acts;
  }

  /** Fills the residual stream where the forward starts (embeddings, or given hidden states); returns that layer. */
  #start(acts: PlannedActivations, hidden: ForwardOptions["hidden"]): number {
    if (!hidden) {
      embedding(this.backend, acts.ints.tokens, this.weights.embeddings, acts.residual(0));
      return 0;
    }
    const { layer, values } = hidden;
    const D = this.config.hiddenSize, T = acts.batch.T;
    if (!Number.isInteger(layer) || layer < 0 || layer > (this.lora?.firstLayer ?? this.config.numLayers)) {
      throw new RangeError(
        `forward: hidden states at layer ${layer} skip adapted layers (the lowest is ${this.lora?.firstLayer}); ` +
          "start at or below it",
      );
    }
    if (values.length !== T * D) {
      throw new RangeError(`forward: ${values.length} hidden values for ${T} tokens of ${D}: pass [T, D]`);
    }
    this.backend.write(acts.residual(layer), values);
    return layer;
  }

  /** The argmax over the vocabulary of each loss row's logits. */
  #argmaxRows(acts: PlannedActivations, count: number): Int32Array {
    const V = this.config.vocabSize;
    using logits = this.backend.empty([count, V], "f32");
    linearLogits(this.backend, acts.final.xn, this.weights.lmHead, acts.ints.rows, logits);
    const z = logits.toHost() as Float32Array;
    const best = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      let k = 0;
      for (let v = 1; v < V; v++) if (z[i * V + v] > z[i * V + k]) k = v;
      best[i] = k;
    }
    return best;
  }

  /**
   * Adds the gradient of gradScale · (the last forward's summed loss) with
   * respect to every A and B into `lora.state`'s grads section (zero it with
   * lora.zeroGrads() before a step). Consumes that forward.
   */
  backward(options: BackwardOptions = {}): void {
    const pending = this.#pending;
    if (!pending) {
      throw new Error("backward: no training forward to differentiate (call forward(batch) with LoRA adapters first)");
    }
    this.#pending = null;
    const { acts, ctx, count } = pending;
    if (count === 0) return;
    const b = this.backend;
    const g = acts.grads!;
    const L = this.config.numLayers;
    const scale = options.gradScale ?? 1 / count;
    addScaled(b, acts.final.dxn, acts.final.dxn, null, { alpha: scale });
    rmsnormBackward(b, acts.residual(L), this.weights.finalNorm, acts.final.rstd, acts.final.dxn, g.dres);
    // No adapter lies below the lowest adapted layer, so the gradient stops there.
    const first = this.lora!.firstLayer;
    for (let l = L - 1; l >= first; l--) {
      if (this.#recompute) this.#layerForward(ctx, acts, l);
      const p = this.layers[l];
      const a = acts.layer(l);
      mlpBlockBackward(ctx, p, a.mid, a.mlp, g);
      attentionBlockBackward(ctx, p, acts.residual(l), a.attn, g, l > first);
    }
  }

  #context(acts: PlannedActivations, dropout: BlockContext["dropout"]): BlockContext {
    return {
      backend: this.backend,
      heads: this.heads,
      eps: this.config.rmsNormEps,
      batch: acts.batch,
      angles: { positions: acts.batch.positions, invFreq: this.invFreq },
      dropout,
    };
  }

  #layerForward(ctx: BlockContext, acts: PlannedActivations, l: number): void {
    const a = acts.layer(l);
    const core = (q: Tensor<"f32">, k: Tensor<"f32">, v: Tensor<"f32">, out: Tensor<"f32">) =>
      attentionForward(this.backend, ctx.batch, this.heads, q, k, v, out, a.attn.lse);
    attentionBlockForward(ctx, this.layers[l], acts.residual(l), a.attn, a.mid, core);
    mlpBlockForward(ctx, this.layers[l], a.mid, a.mlp, acts.residual(l + 1));
  }

  /** Frees the activations, the RoPE table and adapters the model made (not the weights). */
  dispose(): void {
    this.#pending = null;
    this.#train?.[Symbol.dispose]();
    this.#train = null;
    this.invFreq.free();
    if (this.#ownsLora) this.lora?.[Symbol.dispose]();
  }

  /** Same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
