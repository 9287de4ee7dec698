/**
 * Activation memory of a forward (and backward), planned per batch size and
 * reused: every role (a layer's q, the MLP gate, ...) has its own device
 * buffer that grows only when a batch needs more than any before, and each
 * plan hands out exact-shape views of those buffers, so a training step makes
 * no device allocation once the longest batch has been seen.
 *
 * Modes: "train" keeps every layer's activations for the backward;
 * "recompute" keeps only each layer's input (the residual stream) and one
 * layer's worth of working space that the backward refills layer by layer;
 * "inference" keeps one layer's working space, two residual buffers used in
 * turn, and no gradients.
 *
 * @module
 */

import type { Backend } from "../backend/backend.ts";
import { type PackedBatch, positionsFromCuSeqlens } from "../backend/packed.ts";
import { Tensor, type TensorOwner } from "../backend/tensor.ts";
import type { LlamaConfig } from "../formats/llama_config.ts";
import type { LoraParams } from "./lora_params.ts";
import type { LinearName } from "./weights.ts";

/** What the attention block keeps: norm output, projections (q, k after RoPE), attention output, LoRA x·Aᵀ. */
export interface AttentionActs {
  /** RMSNorm output [T, D], the q/k/v input. */
  readonly xn: Tensor<"f32">;
  /** 1/rms per row [T]. */
  readonly rstd: Tensor<"f32">;
  /** [T, nHeads·headDim], after RoPE. */
  readonly q: Tensor<"f32">;
  /** [T, nKvHeads·headDim], after RoPE. */
  readonly k: Tensor<"f32">;
  /** [T, nKvHeads·headDim]. */
  readonly v: Tensor<"f32">;
  /** Attention output [T, nHeads·headDim], the o_proj input. */
  readonly out: Tensor<"f32">;
  /** Log-sum-exp [nHeads, T] for the backward (null in inference). */
  readonly lse: Tensor<"f32"> | null;
  /** drop(x)·Aᵀ [T, r] of each adapted projection of the block. */
  readonly xa: Partial<Record<LinearName, Tensor<"f32">>>;
}

/** What the MLP block keeps. */
export interface MlpActs {
  /** RMSNorm output [T, D], the gate/up input. */
  readonly xn: Tensor<"f32">;
  /** 1/rms per row [T]. */
  readonly rstd: Tensor<"f32">;
  /** [T, F]. */
  readonly gate: Tensor<"f32">;
  /** [T, F]. */
  readonly up: Tensor<"f32">;
  /** silu(gate)·up [T, F], the down_proj input. */
  readonly act: Tensor<"f32">;
  /** drop(x)·Aᵀ [T, r] of each adapted projection of the block. */
  readonly xa: Partial<Record<LinearName, Tensor<"f32">>>;
}

/** One layer's activations; `mid` is the residual stream between its two blocks. */
export interface LayerActs {
  /** The attention block's. */
  readonly attn: AttentionActs;
  /** Residual after attention [T, D]: the MLP block's input. */
  readonly mid: Tensor<"f32">;
  /** The MLP block's. */
  readonly mlp: MlpActs;
}

/** Backward working space shared by all layers. */
export interface GradScratch {
  /** ∂loss/∂(residual stream) [T, D], carried down through the layers. */
  readonly dres: Tensor<"f32">;
  /** ∂loss/∂(a norm's output) [T, D]. */
  readonly dxn: Tensor<"f32">;
  /** ∂loss/∂(attention output) [T, nHeads·headDim]. */
  readonly dattn: Tensor<"f32">;
  /** ∂loss/∂q [T, nHeads·headDim]. */
  readonly dq: Tensor<"f32">;
  /** ∂loss/∂k [T, nKvHeads·headDim]. */
  readonly dk: Tensor<"f32">;
  /** ∂loss/∂v [T, nKvHeads·headDim]. */
  readonly dv: Tensor<"f32">;
  /** ∂loss/∂(SwiGLU output) [T, F]. */
  readonly dact: Tensor<"f32">;
  /** ∂loss/∂gate [T, F]. */
  readonly dgate: Tensor<"f32">;
  /** ∂loss/∂up [T, F]. */
  readonly dup: Tensor<"f32">;
}

/** The int32 inputs of a forward on the device. */
export interface BatchInts {
  /** Token ids [T]. */
  readonly tokens: Tensor<"i32">;
  /** Loss (or output) rows [n]. */
  readonly rows: Tensor<"i32">;
  /** Targets of those rows [n]. */
  readonly targets: Tensor<"i32">;
  /** KV cache lengths before this forward's tokens [numSeqs] (inference). */
  readonly lensBefore: Tensor<"i32">;
  /** KV cache lengths after them [numSeqs] (inference). */
  readonly lensAfter: Tensor<"i32">;
}

/** Host values for {@link PlannedActivations.upload}; positions default to restarting at 0 per sequence. */
export interface BatchUpload {
  /** Token ids [T]. */
  tokens: Int32Array;
  /** Sequence offsets [numSeqs + 1]. */
  cuSeqlens: Int32Array;
  /** Output rows [n]. */
  rows?: Int32Array;
  /** Their targets [n]. */
  targets?: Int32Array;
  /** RoPE positions [T] (decoding: the cache lengths before the new tokens). */
  positions?: Int32Array;
  /** KV cache lengths before the new tokens [numSeqs]. */
  lensBefore?: Int32Array;
  /** KV cache lengths after them [numSeqs]. */
  lensAfter?: Int32Array;
}

/** The views of one planned batch. */
export interface PlannedActivations {
  /** The residual stream entering layer l (l = numLayers: leaving the last layer). */
  residual(l: number): Tensor<"f32">;
  /** Layer l's activations (one shared set unless mode is "train"). */
  layer(l: number): LayerActs;
  /** The final norm: output [T, D], 1/rms [T], and ∂loss/∂output [T, D] from the cross-entropy. */
  readonly final: { readonly xn: Tensor<"f32">; readonly rstd: Tensor<"f32">; readonly dxn: Tensor<"f32"> };
  /** Backward scratch (null in inference). */
  readonly grads: GradScratch | null;
  /** The batch layout (cu_seqlens, positions) for the attention and RoPE ops. */
  readonly batch: PackedBatch;
  /** Int32 inputs. */
  readonly ints: BatchInts;
  /** The summed loss, f32 [1]. */
  readonly lossSum: Tensor<"f32">;
  /** Per-row losses, f32 [n]. */
  readonly rowLoss: Tensor<"f32">;
  /** Logits of the output rows, f32 [n, vocab] (inference plans only). */
  readonly logits: Tensor<"f32"> | null;
  /** Copies the batch's int32 inputs to the device in one transfer. */
  upload(values: BatchUpload): void;
}

/** Whether activations are kept per layer, recomputed, or not kept (see the module notes). */
export type ActivationMode = "train" | "recompute" | "inference";

/**
 * Device buffers handed out in request order: a plan asks for the same
 * sequence of roles every time, so buffer i always serves role i, and it is
 * reallocated only when a plan needs it bigger than ever before.
 */
class BufferPool implements Disposable {
  readonly #backend: Backend;
  readonly #buffers: Tensor<"f32" | "i32">[] = [];
  readonly #owner: TensorOwner;
  #next = 0;

  constructor(backend: Backend) {
    this.#backend = backend;
    this.#owner = { freePointer() {}, toHost: (t) => backend.toHost(t) };
  }

  restart(): void {
    this.#next = 0;
  }

  /** An exact-shape view at the start of the next buffer. */
  take<D extends "f32" | "i32">(shape: readonly number[], dtype: D): Tensor<D> {
    const n = shape.reduce((a, b) => a * b, 1);
    let buffer = this.#buffers[this.#next];
    if (!buffer || buffer.numel < n || buffer.dtype !== dtype) {
      buffer?.free();
      buffer = this.#backend.empty([Math.max(n, 1)], dtype);
      this.#buffers[this.#next] = buffer;
    }
    this.#next++;
    return new Tensor(this.#owner, buffer.ptr, shape, dtype);
  }

  /** Device bytes held. */
  get bytes(): number {
    return this.#buffers.reduce((sum, b) => sum + b.bytes, 0);
  }

  [Symbol.dispose](): void {
    for (const b of this.#buffers) b.free();
    this.#buffers.length = 0;
  }
}

/** The PackedBatch the attention and RoPE wrappers take, over planned views (host offsets set at upload). */
function packedView(
  cuSeqlens: Tensor<"i32">,
  positions: Tensor<"i32">,
  T: number,
  host: { cu: Int32Array },
): PackedBatch {
  const lengths = () => Array.from({ length: host.cu.length - 1 }, (_, s) => host.cu[s + 1] - host.cu[s]);
  const batch: PackedBatch = {
    get lengths() {
      return lengths();
    },
    get cuSeqlensHost() {
      return host.cu;
    },
    cuSeqlens,
    positions,
    get numSeqs() {
      return host.cu.length - 1;
    },
    T,
    get maxSeqlen() {
      return Math.max(0, ...lengths());
    },
    [Symbol.dispose]() {},
  };
  return batch;
}

/**
 * Plans and holds the activations of one model in one mode.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { Activations } from "./activations.ts";
 * using backend = await openBackend("cpu");
 * const config = await readLlamaConfig("../shared/models/stories260K/hf");
 * using acts = new Activations(backend, config, null, "train");
 * const planned = acts.plan(10, 2, 3);
 * planned.layer(4).mlp.gate.shape; // [10, 172]
 * ```
 */
export class Activations implements Disposable {
  readonly #backend: Backend;
  readonly #pool: BufferPool;
  readonly #config: LlamaConfig;
  readonly #mode: ActivationMode;
  readonly #targets: readonly LinearName[];
  readonly #r: number;

  /** Plans for `config` with the adapters of `lora` (null: none). */
  constructor(backend: Backend, config: LlamaConfig, lora: LoraParams | null, mode: ActivationMode) {
    this.#backend = backend;
    this.#pool = new BufferPool(backend);
    this.#config = config;
    this.#mode = mode;
    this.#targets = lora?.options.targets ?? [];
    this.#r = lora?.options.r ?? 0;
  }

  /** Device bytes held (the largest plan so far). */
  get bytes(): number {
    return this.#pool.bytes;
  }

  /**
   * Views for a batch of T tokens in numSeqs sequences with n output rows;
   * the views of the previous plan become invalid.
   */
  plan(T: number, numSeqs: number, n: number): PlannedActivations {
    const c = this.#config;
    const D = c.hiddenSize, F = c.intermediateSize, Q = c.numHeads * c.headDim, KV = c.numKvHeads * c.headDim;
    const inference = this.#mode === "inference";
    this.#pool.restart();
    const f = (shape: number[]) => this.#pool.take(shape, "f32");
    const xa = (names: readonly LinearName[]) =>
      Object.fromEntries(this.#targets.filter((t) => names.includes(t)).map((t) => [t, f([T, this.#r])]));
    const layerActs = (): LayerActs => ({
      attn: {
        xn: f([T, D]),
        rstd: f([T]),
        q: f([T, Q]),
        k: f([T, KV]),
        v: f([T, KV]),
        out: f([T, Q]),
        lse: inference ? null : f([c.numHeads, T]),
        xa: xa(["q_proj", "k_proj", "v_proj", "o_proj"]),
      },
      mid: f([T, D]),
      mlp: {
        xn: f([T, D]),
        rstd: f([T]),
        gate: f([T, F]),
        up: f([T, F]),
        act: f([T, F]),
        xa: xa(["gate_proj", "up_proj", "down_proj"]),
      },
    });
    const residuals = Array.from({ length: inference ? 2 : c.numLayers + 1 }, () => f([T, D]));
    const sets = Array.from({ length: this.#mode === "train" ? c.numLayers : 1 }, layerActs);
    const grads: GradScratch | null = inference ? null : {
      dres: f([T, D]),
      dxn: f([T, D]),
      dattn: f([T, Q]),
      dq: f([T, Q]),
      dk: f([T, KV]),
      dv: f([T, KV]),
      dact: f([T, F]),
      dgate: f([T, F]),
      dup: f([T, F]),
    };
    const final = { xn: f([T, D]), rstd: f([T]), dxn: inference ? f([0]) : f([T, D]) };
    const lossSum = f([1]), rowLoss = f([n]);
    const logits = inference ? f([n, c.vocabSize]) : null;

    // The int32 inputs lie end to end in one buffer so one transfer uploads them all.
    const S = numSeqs;
    const sizes = [T, S + 1, T, n, n, S, S];
    const all = this.#pool.take([sizes.reduce((a, b) => a + b, 0)], "i32");
    const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const at = (i: number) =>
      new Tensor(
        { freePointer() {}, toHost: (t) => this.#backend.toHost(t) },
        Deno.UnsafePointer.offset(all.ptr, starts[i] * 4) as Deno.PointerObject,
        [sizes[i]],
        "i32",
      );
    const [tokens, cuSeqlens, positions, rows, targets, lensBefore, lensAfter] = sizes.map((_, i) => at(i));
    const host: { cu: Int32Array } = { cu: new Int32Array(S + 1) };
    const upload = (v: BatchUpload) => {
      const data = new Int32Array(all.numel);
      const put = (i: number, values: Int32Array | undefined) => {
        if (values === undefined) return;
        if (values.length !== sizes[i]) {
          throw new RangeError(`upload: input ${i} has ${values.length} values, the plan ${sizes[i]}`);
        }
        data.set(values, starts[i]);
      };
      put(0, v.tokens);
      put(1, v.cuSeqlens);
      put(2, v.positions ?? positionsFromCuSeqlens(v.cuSeqlens));
      put(3, v.rows);
      put(4, v.targets);
      put(5, v.lensBefore);
      put(6, v.lensAfter);
      host.cu = v.cuSeqlens;
      const b = this.#backend;
      if (data.length > 0) b.check(b.lib.symbols.lorac_copy_h2d(b.ctx, all.ptr, data, BigInt(data.byteLength)));
    };
    return {
      residual: (l: number) => residuals[inference ? l % 2 : l],
      layer: (l: number) => sets[this.#mode === "train" ? l : 0],
      final,
      grads,
      batch: packedView(cuSeqlens, positions, T, host),
      ints: { tokens, rows, targets, lensBefore, lensAfter },
      lossSum,
      rowLoss,
      logits,
      upload,
    };
  }

  /** Frees every buffer. */
  [Symbol.dispose](): void {
    this.#pool[Symbol.dispose]();
  }
}
