/**
 * The weights of a Llama-family model on a Backend, in the layout training and
 * inference run from: token embeddings in bf16 [vocab, hidden]; per layer the
 * two RMSNorm weights (f32 by default, as RMSNorm computes in fp32) and the
 * seven projections q, k, v, o, gate, up, down in NF4 ([out, in], blocks of
 * 64 by default); the final norm; and the lm_head, which is the embedding
 * tensor itself when the model ties them, else its own bf16 [vocab, hidden].
 * A dense base (load option `baseDtype` "bf16" or "f32", for parity tests
 * against unquantized references) keeps the linears dense in that dtype, and
 * with "f32" the embeddings and lm_head too.
 *
 * The names follow Hugging Face's (model.layers.N.self_attn.q_proj.weight and
 * so on), and the projection names are PEFT's `target_modules`.
 *
 * @module
 */

import type { Nf4Weight } from "../backend/nf4.ts";
import { Tensor } from "../backend/tensor.ts";
import type { LlamaConfig } from "../formats/llama_config.ts";

/** The seven linear projections of a Llama layer, by their HF / PEFT module names. */
export const LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** One of {@link LINEAR_NAMES}. */
export type LinearName = typeof LINEAR_NAMES[number];

/** The dtype RMSNorm weights are kept in. */
export type NormDType = "f32" | "bf16";

/** What a checkpoint tensor becomes on the device. */
export type TensorRole = "embedding" | "norm" | "linear" | "lm_head";

/** One tensor a Llama checkpoint must hold: its HF name, the shape the config implies, and its role. */
export interface TensorSlot {
  /** Hugging Face name, e.g. "model.layers.0.mlp.down_proj.weight". */
  readonly name: string;
  /** [rows, cols] for matrices, [hidden] for norms. */
  readonly shape: readonly number[];
  /** How it is stored on the device. */
  readonly role: TensorRole;
}

const MLP_LINEARS: ReadonlySet<LinearName> = new Set(["gate_proj", "up_proj", "down_proj"]);

/**
 * The HF tensor name of a layer's linear weight.
 *
 * @example
 * ```ts
 * import { linearTensorName } from "./weights.ts";
 * linearTensorName(2, "q_proj"); // "model.layers.2.self_attn.q_proj.weight"
 * linearTensorName(0, "down_proj"); // "model.layers.0.mlp.down_proj.weight"
 * ```
 */
export function linearTensorName(layer: number, linear: LinearName): string {
  return `model.layers.${layer}.${MLP_LINEARS.has(linear) ? "mlp" : "self_attn"}.${linear}.weight`;
}

/**
 * The [out, in] shape of each linear projection under `config`.
 *
 * @example
 * ```ts
 * import { linearShape } from "./weights.ts";
 * const c = { hiddenSize: 64, numHeads: 8, numKvHeads: 4, headDim: 8, intermediateSize: 172 };
 * linearShape(c, "k_proj"); // [32, 64]
 * linearShape(c, "down_proj"); // [64, 172]
 * ```
 */
export function linearShape(
  config: Pick<LlamaConfig, "hiddenSize" | "numHeads" | "numKvHeads" | "headDim" | "intermediateSize">,
  linear: LinearName,
): [number, number] {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const f = config.intermediateSize;
  switch (linear) {
    case "q_proj":
      return [q, d];
    case "k_proj":
    case "v_proj":
      return [kv, d];
    case "o_proj":
      return [d, q];
    case "gate_proj":
    case "up_proj":
      return [f, d];
    case "down_proj":
      return [d, f];
  }
}

/**
 * Every tensor a checkpoint of `config` must hold, in checkpoint order:
 * embeddings, then per layer its input norm, q, k, v, o, post-attention norm,
 * gate, up, down; the final norm; and lm_head.weight unless it is tied.
 *
 * @example
 * ```ts
 * import { llamaTensorSlots } from "./weights.ts";
 * const slots = llamaTensorSlots({
 *   hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, intermediateSize: 172,
 *   vocabSize: 512, tieWordEmbeddings: true,
 * });
 * slots.length; // 1 + 5 * 9 + 1 = 47
 * slots[0]; // { name: "model.embed_tokens.weight", shape: [512, 64], role: "embedding" }
 * ```
 */
export function llamaTensorSlots(
  config:
    & Pick<
      LlamaConfig,
      "hiddenSize" | "numLayers" | "numHeads" | "numKvHeads" | "headDim" | "intermediateSize" | "vocabSize"
    >
    & Pick<LlamaConfig, "tieWordEmbeddings">,
): TensorSlot[] {
  const d = config.hiddenSize;
  const slots: TensorSlot[] = [{ name: "model.embed_tokens.weight", shape: [config.vocabSize, d], role: "embedding" }];
  const linear = (layer: number, name: LinearName): TensorSlot => ({
    name: linearTensorName(layer, name),
    shape: linearShape(config, name),
    role: "linear",
  });
  for (let l = 0; l < config.numLayers; l++) {
    slots.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [d], role: "norm" });
    for (const name of ["q_proj", "k_proj", "v_proj", "o_proj"] as const) slots.push(linear(l, name));
    slots.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [d], role: "norm" });
    for (const name of ["gate_proj", "up_proj", "down_proj"] as const) slots.push(linear(l, name));
  }
  slots.push({ name: "model.norm.weight", shape: [d], role: "norm" });
  if (!config.tieWordEmbeddings) slots.push({ name: "lm_head.weight", shape: [config.vocabSize, d], role: "lm_head" });
  return slots;
}

/**
 * Parameters of a Llama under `config` (embeddings, norms, projections, and
 * the lm_head only when it is not tied), as HF's `num_parameters()` counts them.
 *
 * @example
 * ```ts
 * import { parameterCount } from "./weights.ts";
 * parameterCount({
 *   hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3, headDim: 64, intermediateSize: 1536,
 *   vocabSize: 49152, tieWordEmbeddings: true,
 * }); // 134515008 (SmolLM2-135M)
 * ```
 */
export function parameterCount(config: Parameters<typeof llamaTensorSlots>[0]): number {
  return llamaTensorSlots(config).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** A frozen linear weight [out, in]: NF4 (the QLoRA base) or dense bf16 / f32. */
export type LinearWeight = Nf4Weight | Tensor<"bf16" | "f32">;

/** The dtype of the embeddings and an untied lm_head: bf16, or f32 for an f32 dense base. */
export type EmbeddingDType = "bf16" | "f32";

/** One decoder layer's weights. */
export interface LayerWeights {
  /** RMSNorm weight before attention, [hidden]. */
  readonly inputLayernorm: Tensor<NormDType>;
  /** RMSNorm weight before the MLP, [hidden]. */
  readonly postAttentionLayernorm: Tensor<NormDType>;
  /** The seven projections, [out, in] each, by PEFT module name: NF4, or dense for a dense base. */
  readonly linear: Readonly<Record<LinearName, LinearWeight>>;
}

/** A loaded tensor: dense (embeddings, norms, lm_head, dense linears) or NF4 (linears). */
export type LoadedTensor = Tensor<"bf16" | "f32"> | Nf4Weight;

function bytesOf(t: LoadedTensor): number {
  return t instanceof Tensor ? t.bytes : t.packed.bytes + t.absmax.bytes;
}

/**
 * All weights of a Llama on one Backend. Dispose it (or `using`) to free them.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using model = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * const w = model.weights;
 * w.linearDtype; // "nf4"
 * w.lmHead === w.embeddings; // true: stories260K ties them
 * ```
 */
export class LlamaWeights implements Disposable {
  /** Token embeddings, [vocab, hidden]: bf16 (f32 for an f32 dense base). */
  readonly embeddings: Tensor<EmbeddingDType>;
  /** The decoder layers, first to last. */
  readonly layers: readonly LayerWeights[];
  /** The final RMSNorm weight, [hidden]. */
  readonly finalNorm: Tensor<NormDType>;
  /** The output projection [vocab, hidden], the dtype of `embeddings`; the same object when tied. */
  readonly lmHead: Tensor<EmbeddingDType>;
  /** Elements per NF4 absmax block of the linears (64 when they are dense). */
  readonly blocksize: number;
  /** How the linears are stored: "nf4" (the QLoRA base) or a dense dtype. */
  readonly linearDtype: "nf4" | "bf16" | "f32";
  readonly #all: LoadedTensor[];

  private constructor(
    embeddings: Tensor<EmbeddingDType>,
    layers: LayerWeights[],
    finalNorm: Tensor<NormDType>,
    lmHead: Tensor<EmbeddingDType>,
    blocksize: number,
    linearDtype: "nf4" | "bf16" | "f32",
    all: LoadedTensor[],
  ) {
    this.embeddings = embeddings;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
    this.blocksize = blocksize;
    this.linearDtype = linearDtype;
    this.#all = all;
  }

  /**
   * Assembles the weights from loaded tensors keyed by HF name (every slot of
   * {@link llamaTensorSlots}); throws naming the first one that is missing or
   * of the wrong kind. The linears are all NF4 or all dense of one dtype.
   * Takes ownership: the tensors are freed with the result.
   */
  static fromTensors(
    config: Parameters<typeof llamaTensorSlots>[0],
    tensors: ReadonlyMap<string, LoadedTensor>,
  ): LlamaWeights {
    const dense = <D extends "bf16" | NormDType>(name: string, dtypes: readonly D[]): Tensor<D> => {
      const t = tensors.get(name);
      if (!(t instanceof Tensor) || !(dtypes as readonly string[]).includes(t.dtype)) {
        throw new TypeError(`weights: "${name}" must be a loaded ${dtypes.join(" or ")} tensor`);
      }
      return t as Tensor<D>;
    };
    const linearOf = (name: string): LinearWeight => {
      const t = tensors.get(name);
      if (t === undefined) throw new TypeError(`weights: "${name}" must be a loaded NF4 or dense weight`);
      return t;
    };
    const norms = ["f32", "bf16"] as const;
    const embeddings = dense("model.embed_tokens.weight", ["bf16", "f32"]);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const linear = Object.fromEntries(LINEAR_NAMES.map((n) => [n, linearOf(linearTensorName(l, n))])) as Record<
        LinearName,
        LinearWeight
      >;
      layers.push({
        inputLayernorm: dense(`model.layers.${l}.input_layernorm.weight`, norms),
        postAttentionLayernorm: dense(`model.layers.${l}.post_attention_layernorm.weight`, norms),
        linear,
      });
    }
    const linears = layers.flatMap((l) => LINEAR_NAMES.map((n) => l.linear[n]));
    const kinds = new Set(linears.map((w) => w instanceof Tensor ? w.dtype : "nf4" as const));
    if (kinds.size > 1) throw new TypeError(`weights: the linears mix storage types ${[...kinds]}; use one`);
    const blocksizes = new Set(linears.flatMap((w) => w instanceof Tensor ? [] : [w.blocksize]));
    if (blocksizes.size > 1) throw new TypeError(`weights: the linears mix NF4 blocksizes ${[...blocksizes]}`);
    const finalNorm = dense("model.norm.weight", norms);
    const lmHead = config.tieWordEmbeddings ? embeddings : dense("lm_head.weight", [embeddings.dtype]);
    const all = llamaTensorSlots(config).map((s) => tensors.get(s.name)!);
    const linearDtype = [...kinds][0] ?? "nf4";
    return new LlamaWeights(embeddings, layers, finalNorm, lmHead, [...blocksizes][0] ?? 64, linearDtype, all);
  }

  /** True when the lm_head is the embedding tensor. */
  get tied(): boolean {
    return this.lmHead === this.embeddings;
  }

  /** Device bytes of all weights (a tied lm_head counted once). */
  get deviceBytes(): number {
    return this.#all.reduce((n, t) => n + bytesOf(t), 0);
  }

  /** Frees every weight; later calls do nothing. */
  dispose(): void {
    for (const t of this.#all) t instanceof Tensor ? t.free() : t[Symbol.dispose]();
  }

  /** Same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
