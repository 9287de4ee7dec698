/**
 * The LoRA parameters of a Llama: an A [r, in] and a B [out, r] for every
 * targeted projection of every layer, laid out in ONE flat fp32 buffer — the
 * params section of an {@link AdamWState} ([params | grads | m | v]) — so the
 * optimiser, the gradient norm and checkpoints see one array. Each module's A
 * and B (and their gradients) are views into it, in layer order, then
 * q, k, v, o, gate, up, down order within a layer, A before B.
 *
 * Initialisation is PEFT's: A ~ kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(in)),
 * B = 0 (so the adapted model starts equal to the base), from a seeded
 * generator so the same seed gives the same bytes. Import and export go
 * through lib/formats/peft_adapter.ts with PEFT's module names.
 *
 * @module
 */

import { AdamWState } from "../backend/adamw.ts";
import type { Backend } from "../backend/backend.ts";
import { type LoraAdapter, loraScale } from "../backend/lora.ts";
import { Tensor, type TensorOwner } from "../backend/tensor.ts";
import type { LlamaConfig } from "../formats/llama_config.ts";
import type { PeftAdapter, PeftLoraModule } from "../formats/peft_adapter.ts";
import { LINEAR_NAMES, type LinearName, linearShape, linearTensorName } from "./weights.ts";

/** How the adapters are shaped and applied (PEFT's LoraConfig fields). */
export interface LoraOptions {
  /** Rank. */
  readonly r: number;
  /** The update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA). */
  readonly alpha: number;
  /** Dropout probability on each adapter's input during training, in [0, 1). */
  readonly dropout: number;
  /** rsLoRA scaling. */
  readonly rslora: boolean;
  /** The projections to adapt in every adapted layer. */
  readonly targets: readonly LinearName[];
  /**
   * The decoder layers to adapt (PEFT's `layers_to_transform`), or null for
   * all. Layers below the lowest one get no gradient, so the backward stops
   * there and their outputs can be cached (lib/train/frozen_prefix.ts).
   */
  readonly layers: readonly number[] | null;
}

/** The defaults of the reference project (r = 2, alpha = 2, no dropout) on all seven projections of every layer. */
export const DEFAULT_LORA_OPTIONS: LoraOptions = {
  r: 2,
  alpha: 2,
  dropout: 0,
  rslora: false,
  targets: LINEAR_NAMES,
  layers: null,
};

/** One adapted projection: its place in the flat buffer and views of its A, B and gradients. */
export interface LoraModule {
  /** Decoder layer index. */
  readonly layer: number;
  /** Which projection. */
  readonly linear: LinearName;
  /** The HF module name PEFT uses, e.g. "model.layers.0.self_attn.q_proj". */
  readonly name: string;
  /** Input features (columns of A). */
  readonly inFeatures: number;
  /** Output features (rows of B). */
  readonly outFeatures: number;
  /** Float offset of A within each section of the buffer; B follows A. */
  readonly offset: number;
  /** The adapter as the LoRA kernels take it (A, B views; scale; dropout and seed set per step). */
  readonly adapter: LoraAdapter;
  /** Gradient of A, [r, in] view into the grads section. */
  readonly dA: Tensor<"f32">;
  /** Gradient of B, [out, r] view into the grads section. */
  readonly dB: Tensor<"f32">;
}

/** mulberry32: a small seeded generator of uniforms in [0, 1) for the initialisation. */
function uniforms(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every adapter of a model in one AdamW state buffer.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { readLlamaConfig } from "../formats/llama_config.ts";
 * import { LoraParams } from "./lora_params.ts";
 * using backend = await openBackend("cpu");
 * const config = await readLlamaConfig("../shared/models/stories260K/hf");
 * using lora = LoraParams.create(backend, config, { r: 4, alpha: 8 }, 42);
 * lora.modules.length; // 35: 5 layers x 7 projections
 * lora.modules[0].name; // "model.layers.0.self_attn.q_proj"
 * ```
 */
export class LoraParams implements Disposable {
  /** The options the adapters were made with. */
  readonly options: LoraOptions;
  /** Every adapted projection, in buffer order. */
  readonly modules: readonly LoraModule[];
  /** The optimiser state [params | grads | m | v] holding every A and B. */
  readonly state: AdamWState;
  readonly #backend: Backend;
  readonly #byKey: Map<string, LoraModule>;

  private constructor(backend: Backend, config: LlamaConfig, options: LoraOptions) {
    if (!Number.isInteger(options.r) || options.r < 1) throw new RangeError(`LoRA r must be a positive integer`);
    if (!(options.dropout >= 0 && options.dropout < 1)) {
      throw new RangeError(`LoRA dropout must be in [0, 1), got ${options.dropout}`);
    }
    for (const t of options.targets) {
      if (!LINEAR_NAMES.includes(t)) throw new RangeError(`LoRA target "${t}" is not one of ${LINEAR_NAMES}`);
    }
    const layers = options.layers === null ? null : [...new Set(options.layers)].sort((a, b) => a - b);
    for (const l of layers ?? []) {
      if (!Number.isInteger(l) || l < 0 || l >= config.numLayers) {
        throw new RangeError(`layers_to_transform: ${l} is not a layer of this model (0 to ${config.numLayers - 1})`);
      }
    }
    if (layers !== null && layers.length === 0) throw new RangeError("LoRA layers: name at least one layer");
    this.#backend = backend;
    this.options = { ...options, targets: LINEAR_NAMES.filter((n) => options.targets.includes(n)), layers };
    const { r } = this.options;
    const scale = loraScale(options.alpha, r, options.rslora);
    const layout: { layer: number; linear: LinearName; out: number; inp: number; offset: number }[] = [];
    let n = 0;
    for (let layer = 0; layer < config.numLayers; layer++) {
      if (layers !== null && !layers.includes(layer)) continue;
      for (const linear of this.options.targets) {
        const [out, inp] = linearShape(config, linear);
        layout.push({ layer, linear, out, inp, offset: n });
        n += r * (inp + out);
      }
    }
    this.state = new AdamWState(backend, n);
    const views: TensorOwner = { freePointer() {}, toHost: (t) => backend.toHost(t) };
    const view = (section: 0 | 1, offset: number, shape: number[]) =>
      new Tensor(views, Deno.UnsafePointer.offset(this.state.section(section), offset * 4)!, shape, "f32");
    this.modules = layout.map(({ layer, linear, out, inp, offset }) => ({
      layer,
      linear,
      name: linearTensorName(layer, linear).replace(/\.weight$/, ""),
      inFeatures: inp,
      outFeatures: out,
      offset,
      adapter: {
        A: view(0, offset, [r, inp]),
        B: view(0, offset + r * inp, [out, r]),
        scale,
        dropout: 0,
        seed: 0n,
      },
      dA: view(1, offset, [r, inp]),
      dB: view(1, offset + r * inp, [out, r]),
    }));
    this.#byKey = new Map(this.modules.map((m) => [m.name, m]));
  }

  /**
   * New adapters for `config` with PEFT's initialisation from `seed`
   * (options default to {@link DEFAULT_LORA_OPTIONS}).
   */
  static create(backend: Backend, config: LlamaConfig, options: Partial<LoraOptions>, seed: number): LoraParams {
    const lora = new LoraParams(backend, config, { ...DEFAULT_LORA_OPTIONS, ...options });
    lora.initialize(seed);
    return lora;
  }

  /**
   * Adapters holding a PEFT adapter's weights (its r, alpha, dropout, rsLoRA,
   * targets and layers); throws when it does not fit `config` or is not one rank and
   * scale for all modules of the same targets in every layer.
   */
  static fromPeft(backend: Backend, config: LlamaConfig, adapter: PeftAdapter): LoraParams {
    const c = adapter.config;
    if (c.rankPattern || c.alphaPattern) {
      throw new RangeError("the adapter has rank_pattern / alpha_pattern: lorac trains one rank and alpha for all");
    }
    const targets = new Set<LinearName>();
    for (const m of adapter.modules) {
      const linear = m.module.split(".").pop() as LinearName;
      if (!LINEAR_NAMES.includes(linear)) {
        throw new RangeError(`adapter module ${m.module} is not one of the Llama projections ${LINEAR_NAMES}`);
      }
      targets.add(linear);
    }
    const lora = new LoraParams(backend, config, {
      r: c.r,
      alpha: c.loraAlpha,
      dropout: c.loraDropout,
      rslora: c.useRslora,
      targets: [...targets],
      // The config names the layers: modules missing from a layer it names (or from any layer) are an error.
      layers: c.layersToTransform ?? null,
    });
    try {
      lora.loadPeft(adapter);
    } catch (e) {
      lora[Symbol.dispose]();
      throw e;
    }
    return lora;
  }

  /** The lowest adapted layer: no gradient flows below it (0 when every layer is adapted). */
  get firstLayer(): number {
    return this.modules.length === 0 ? 0 : this.modules[0].layer;
  }

  /** Trainable parameters in all (floats per section of the state). */
  get n(): number {
    return this.state.n;
  }

  /** The module adapting `linear` of `layer`, or undefined when it is not a target. */
  module(layer: number, linear: LinearName): LoraModule | undefined {
    return this.#byKey.get(linearTensorName(layer, linear).replace(/\.weight$/, ""));
  }

  /** PEFT's initialisation: A ~ U(±1/sqrt(in)) drawn module by module from `seed`, B = 0; grads and moments zeroed. */
  initialize(seed: number): void {
    const next = uniforms(seed);
    const params = new Float32Array(this.n);
    for (const m of this.modules) {
      const bound = 1 / Math.sqrt(m.inFeatures);
      const count = this.options.r * m.inFeatures;
      for (let i = 0; i < count; i++) params[m.offset + i] = (2 * next() - 1) * bound;
    }
    const b = this.#backend;
    b.check(b.lib.symbols.lorac_memset(b.ctx, this.state.buffer.ptr, 0, BigInt(this.state.buffer.bytes)));
    this.#writeParams(params);
    this.state.step = 0;
  }

  /** Sets every gradient to zero (before accumulating a new step's). */
  zeroGrads(): void {
    const b = this.#backend;
    b.check(b.lib.symbols.lorac_memset(b.ctx, this.state.section(1), 0, BigInt(this.n * 4)));
  }

  /** The parameters, [n] fp32, copied to the host. */
  params(): Float32Array {
    return this.#readSection(0);
  }

  /** Overwrites the parameters with `values` ([n] fp32, the buffer's order). */
  setParams(values: Float32Array): void {
    if (values.length !== this.n) throw new RangeError(`setParams: ${values.length} values for ${this.n} parameters`);
    this.#writeParams(values);
  }

  /** The gradients, [n] fp32, copied to the host. */
  grads(): Float32Array {
    return this.#readSection(1);
  }

  /** The adapters in PEFT's layout, ready for writePeftAdapter. */
  toPeft(baseModelNameOrPath: string | null = null): PeftAdapter {
    const params = this.params();
    const { r, alpha, dropout, rslora, targets, layers } = this.options;
    const modules: PeftLoraModule[] = this.modules.map((m) => ({
      module: m.name,
      r,
      inFeatures: m.inFeatures,
      outFeatures: m.outFeatures,
      a: params.slice(m.offset, m.offset + r * m.inFeatures),
      b: params.slice(m.offset + r * m.inFeatures, m.offset + r * (m.inFeatures + m.outFeatures)),
    }));
    return {
      config: {
        r,
        loraAlpha: alpha,
        loraDropout: dropout,
        targetModules: [...targets],
        useRslora: rslora,
        baseModelNameOrPath,
        ...(layers === null ? {} : { layersToTransform: layers }),
      },
      modules,
    };
  }

  /**
   * Overwrites A and B of every module from a PEFT adapter with the same
   * modules, shapes and scaling (use {@link LoraParams.fromPeft} for another one).
   */
  loadPeft(adapter: PeftAdapter): void {
    const c = adapter.config;
    const { r: rank, alpha, rslora } = this.options;
    if (c.r !== rank || c.loraAlpha !== alpha || c.useRslora !== rslora) {
      throw new RangeError(
        `the adapter has r=${c.r}, alpha=${c.loraAlpha}, rsLoRA ${c.useRslora}; these adapters are ` +
          `r=${rank}, alpha=${alpha}, rsLoRA ${rslora}: make them with LoraParams.fromPeft instead`,
      );
    }
    const params = this.params();
    const byName = new Map(adapter.modules.map((m) => [m.module, m]));
    if (byName.size !== this.modules.length) {
      throw new RangeError(`the adapter has ${byName.size} modules; this model's LoRA has ${this.modules.length}`);
    }
    const r = this.options.r;
    for (const m of this.modules) {
      const p = byName.get(m.name);
      if (!p) throw new RangeError(`the adapter has no weights for ${m.name}`);
      if (p.r !== r || p.inFeatures !== m.inFeatures || p.outFeatures !== m.outFeatures) {
        throw new RangeError(
          `${m.name}: the adapter's A/B are r=${p.r}, ${p.inFeatures} -> ${p.outFeatures}; ` +
            `the model needs r=${r}, ${m.inFeatures} -> ${m.outFeatures}`,
        );
      }
      params.set(p.a, m.offset);
      params.set(p.b, m.offset + r * m.inFeatures);
    }
    this.#writeParams(params);
  }

  #readSection(section: 0 | 1): Float32Array {
    const out = new Float32Array(this.n);
    const b = this.#backend;
    b.check(b.lib.symbols.lorac_copy_d2h(b.ctx, out, this.state.section(section), BigInt(this.n * 4)));
    return out;
  }

  #writeParams(params: Float32Array): void {
    const b = this.#backend;
    b.check(b.lib.symbols.lorac_copy_h2d(b.ctx, this.state.section(0), params, BigInt(this.n * 4)));
  }

  /** Frees the state buffer (the module views die with it). */
  [Symbol.dispose](): void {
    this.state[Symbol.dispose]();
  }
}
