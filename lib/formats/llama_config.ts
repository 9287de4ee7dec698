/**
 * A Hugging Face config.json read into the Llama shape lorac runs: sizes,
 * norm epsilon, RoPE base and scaling, embedding tying and special token ids.
 *
 * Accepted: `LlamaForCausalLM` (Llama 2/3/3.1/3.2, TinyLlama, SmolLM/SmolLM2,
 * stories260K), and `MistralForCausalLM` only when its `sliding_window` is
 * null or covers `max_position_embeddings` — then HF's Mistral computes
 * exactly what HF's Llama computes with the same weights and names; a real
 * window changes attention and is refused. Everything else, and Llama variants
 * our kernels do not implement (biases, an activation other than SiLU, RoPE
 * scaling other than linear / llama3, pre-quantized weights), is refused with
 * a message naming what was found. Missing optional fields take
 * transformers' LlamaConfig defaults.
 *
 * @module
 */

import { describe, oneLine } from "../util/describe.ts";

/** How RoPE frequencies are rescaled for long contexts. */
export type RopeScaling =
  | { readonly type: "none" }
  | { readonly type: "linear"; readonly factor: number }
  | {
    readonly type: "llama3";
    readonly factor: number;
    readonly lowFreqFactor: number;
    readonly highFreqFactor: number;
    readonly originalMaxPositionEmbeddings: number;
  }
  /** llama.cpp's form (a GGUF's rope_freqs tensor): inverse frequency i is divided by factors[i]. */
  | { readonly type: "frequency_factors"; readonly factors: Float32Array };

/** The architectures lorac accepts (see the module notes). */
export type LlamaArchitecture = "LlamaForCausalLM" | "MistralForCausalLM";

/** A Llama-family model's shape and constants. */
export interface LlamaConfig {
  /** The architecture the config declared. */
  readonly architecture: LlamaArchitecture;
  /** Width of the residual stream (hidden_size). */
  readonly hiddenSize: number;
  /** Decoder layers (num_hidden_layers). */
  readonly numLayers: number;
  /** Query heads (num_attention_heads). */
  readonly numHeads: number;
  /** Key/value heads (num_key_value_heads; fewer than numHeads means grouped-query attention). */
  readonly numKvHeads: number;
  /** Per-head width (head_dim, default hiddenSize / numHeads). */
  readonly headDim: number;
  /** MLP width (intermediate_size). */
  readonly intermediateSize: number;
  /** Rows of the embedding and the lm_head (vocab_size). */
  readonly vocabSize: number;
  /** RMSNorm epsilon (rms_norm_eps). */
  readonly rmsNormEps: number;
  /** RoPE base (rope_theta). */
  readonly ropeTheta: number;
  /** RoPE frequency scaling. */
  readonly ropeScaling: RopeScaling;
  /** True when the lm_head is the embedding matrix (tie_word_embeddings). */
  readonly tieWordEmbeddings: boolean;
  /** Beginning-of-sequence token, or null. */
  readonly bosTokenId: number | null;
  /** End-of-sequence tokens (Llama 3.1 Instruct has several); may be empty. */
  readonly eosTokenIds: readonly number[];
  /** Padding token, or null. */
  readonly padTokenId: number | null;
  /** The longest context the model was trained for (max_position_embeddings). */
  readonly maxPositionEmbeddings: number;
}

/** A config that is not a Llama-family model lorac can run, or is malformed; the message names the file and the problem. */
export class LlamaConfigError extends Error {
  /** Where the config came from (a path, or a description). */
  readonly source: string;

  /** Creates the error; the message is `<source>: <problem>`. */
  constructor(source: string, problem: string, options?: ErrorOptions) {
    super(`${source}: ${problem}`, options);
    this.name = "LlamaConfigError";
    this.source = source;
  }
}

const ARCHITECTURES: Record<string, LlamaArchitecture> = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM" };

/** The largest size a config may give: lorac's kernels index with 32-bit integers. */
export const MAX_CONFIG_SIZE = 2 ** 31 - 1;
/** The widest attention head accepted (real Llama-family models use 64 to 256). */
export const MAX_HEAD_DIM = 1024;

/**
 * Turns a parsed config.json into a LlamaConfig, or throws LlamaConfigError
 * saying what is wrong. `source` names the file in messages.
 *
 * @example
 * ```ts
 * import { parseLlamaConfig } from "./llama_config.ts";
 * const c = parseLlamaConfig({
 *   architectures: ["LlamaForCausalLM"], hidden_size: 64, num_hidden_layers: 5, num_attention_heads: 8,
 *   num_key_value_heads: 4, intermediate_size: 172, vocab_size: 512, tie_word_embeddings: true,
 * }, "config.json");
 * c.headDim; // 8
 * ```
 */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  const fail = (problem: string): never => {
    throw new LlamaConfigError(source, problem);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("a config must be a JSON object");
  const c = json as Record<string, unknown>;
  const has = (key: string) => c[key] !== undefined;

  // A non-string entry is shown as JSON: String() of a parsed object can throw (a "toString" key).
  const declared = Array.isArray(c.architectures)
    ? c.architectures.map((a) => typeof a === "string" ? a : describe(a, 40))
    : [];
  const modelType = typeof c.model_type === "string" ? c.model_type : undefined;
  const known = Object.values(ARCHITECTURES) as string[];
  const architecture = declared.length > 0
    ? declared.find((a) => known.includes(a)) as LlamaArchitecture | undefined
    : modelType !== undefined && Object.hasOwn(ARCHITECTURES, modelType)
    ? ARCHITECTURES[modelType]
    : undefined;
  if (architecture === undefined) {
    const found = declared.length > 0 ? `architectures ${describe(declared)}` : `model_type ${describe(modelType)}`;
    fail(`${found} is not a Llama-family causal LM; lorac runs ${known.join(" and ")} (model_type llama / mistral)`);
  }
  if (modelType !== undefined && !Object.hasOwn(ARCHITECTURES, modelType)) {
    fail(`model_type ${describe(modelType)} is not llama or mistral, although architectures says ${architecture}`);
  }

  const int = (key: string, fallback?: number): number => {
    const v = has(key) && c[key] !== null ? c[key] : fallback;
    if (v === undefined) return fail(`"${key}" is missing: a Llama config must give it`);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      return fail(`"${key}" must be a positive integer, got ${describe(v)}`);
    }
    if (v > MAX_CONFIG_SIZE) fail(`"${key}" is ${v}, more than lorac's limit of 2^31-1: is the config corrupted?`);
    return v;
  };
  const positive = (key: string, value: unknown): number => {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      return fail(`"${key}" must be a positive number, got ${describe(value)}`);
    }
    return value;
  };
  const tokenId = (key: string, fallback: number | null): number | null => {
    const v = has(key) ? c[key] : fallback;
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      return fail(`"${key}" must be a token id or null, got ${describe(v)}`);
    }
    return v;
  };

  const hiddenSize = int("hidden_size");
  const numLayers = int("num_hidden_layers");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  const intermediateSize = int("intermediate_size");
  const vocabSize = int("vocab_size");
  const maxPositionEmbeddings = int("max_position_embeddings", 2048);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (!has("head_dim") && hiddenSize % numHeads !== 0) {
    fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and head_dim is not given`);
  }
  const headDim = int("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} is odd: RoPE rotates pairs of dimensions`);
  if (headDim > MAX_HEAD_DIM) {
    fail(
      `head_dim ${headDim} is wider than ${MAX_HEAD_DIM}: no Llama-family model has such heads; is the config corrupted?`,
    );
  }

  const act = c.hidden_act ?? "silu";
  if (act !== "silu") fail(`hidden_act ${describe(act)} is not supported: Llama's MLP is SwiGLU with SiLU`);
  for (const key of ["attention_bias", "mlp_bias"]) {
    if (c[key] === true) fail(`${key} is true: lorac's Llama has no bias terms`);
  }
  if (has("quantization_config") && c.quantization_config !== null) {
    const q = c.quantization_config;
    const method = typeof q === "object" && q !== null ? (q as Record<string, unknown>).quant_method : undefined;
    fail(
      `the checkpoint is pre-quantized (quantization_config.quant_method ${describe(method)}); ` +
        "use the unquantized (fp16/bf16/fp32) model: lorac quantizes to NF4 itself on load",
    );
  }
  if (architecture === "MistralForCausalLM") {
    const window = c.sliding_window;
    if (window !== undefined && window !== null && !(typeof window === "number" && window >= maxPositionEmbeddings)) {
      fail(
        `MistralForCausalLM with sliding_window ${describe(window)} < max_position_embeddings ` +
          `${maxPositionEmbeddings}: windowed attention is not Llama's; only window-free Mistral configs are accepted`,
      );
    }
  }

  // transformers 5 writes rope_parameters (theta inside); earlier versions rope_scaling + rope_theta.
  const params = c.rope_parameters ?? c.rope_scaling ?? null;
  if (params !== null && (typeof params !== "object" || Array.isArray(params))) {
    fail(`rope_scaling must be an object or null, got ${describe(params)}`);
  }
  const rope = (params ?? {}) as Record<string, unknown>;
  const ropeTheta = positive("rope_theta", rope.rope_theta ?? c.rope_theta ?? 10000);
  const ropeScaling = parseRopeScaling(rope, fail);
  const eos = has("eos_token_id") ? c.eos_token_id : 2;
  const eosList = eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  const eosTokenIds = eosList.map((v) => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      return fail(`"eos_token_id" must be a token id, a list of them or null, got ${describe(eos)}`);
    }
    return v;
  });
  const tie = c.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") fail(`"tie_word_embeddings" must be true or false, got ${describe(tie)}`);

  return {
    architecture: architecture!,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize,
    vocabSize,
    rmsNormEps: positive("rms_norm_eps", c.rms_norm_eps ?? 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: tie as boolean,
    bosTokenId: tokenId("bos_token_id", 1),
    eosTokenIds,
    padTokenId: tokenId("pad_token_id", null),
    maxPositionEmbeddings,
  };
}

function parseRopeScaling(rope: Record<string, unknown>, fail: (problem: string) => never): RopeScaling {
  const type = rope.rope_type ?? rope.type ?? "default";
  const num = (key: string, fallback?: number): number => {
    const v = rope[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      return fail(`rope_scaling ${describe(type)} needs a positive "${key}", got ${describe(v)}`);
    }
    return v;
  };
  switch (type) {
    case "default":
      return { type: "none" };
    case "linear":
      return { type: "linear", factor: num("factor") };
    case "llama3":
      return {
        type: "llama3",
        factor: num("factor"),
        lowFreqFactor: num("low_freq_factor"),
        highFreqFactor: num("high_freq_factor"),
        originalMaxPositionEmbeddings: num("original_max_position_embeddings"),
      };
    default:
      return fail(
        `rope_scaling type ${describe(type)} is not supported (lorac implements none, linear and llama3)`,
      );
  }
}

/**
 * Reads `config.json` from a model folder (or the file itself) into a LlamaConfig.
 *
 * @example
 * ```ts ignore
 * import { readLlamaConfig } from "./llama_config.ts";
 * const config = await readLlamaConfig("../shared/models/stories260K/hf");
 * config.numLayers; // 5
 * ```
 */
export async function readLlamaConfig(path: string): Promise<LlamaConfig> {
  const file = path.endsWith(".json") ? path : `${path.replace(/\/+$/, "")}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new LlamaConfigError(file, `cannot read a JSON config: ${oneLine((e as Error).message)}`, { cause: e });
  }
  return parseLlamaConfigText(text, file);
}

/**
 * Parses the text of a config.json into a LlamaConfig; text that is not JSON
 * is a LlamaConfigError naming `source`, as is any problem {@link parseLlamaConfig} finds.
 *
 * @example
 * ```ts
 * import { parseLlamaConfigText } from "./llama_config.ts";
 * const text = '{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 5, "num_attention_heads": 8, ' +
 *   '"intermediate_size": 172, "vocab_size": 512}';
 * parseLlamaConfigText(text, "config.json").numKvHeads; // 8
 * ```
 */
export function parseLlamaConfigText(text: string, source: string): LlamaConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LlamaConfigError(source, `cannot read a JSON config: ${oneLine((e as Error).message)}`, { cause: e });
  }
  return parseLlamaConfig(json, source);
}

/**
 * The RoPE inverse frequencies (length headDim / 2) after the config's
 * scaling, in float64: theta^(-2i/headDim), divided by the linear factor, by
 * transformers' llama3 rule, or by llama.cpp's per-frequency factors.
 *
 * @example
 * ```ts
 * import { ropeInverseFrequencies } from "./llama_config.ts";
 * ropeInverseFrequencies({ headDim: 4, ropeTheta: 10000, ropeScaling: { type: "none" } }); // [1, 0.01]
 * ```
 */
export function ropeInverseFrequencies(
  config: Pick<LlamaConfig, "headDim" | "ropeTheta" | "ropeScaling">,
): Float64Array {
  const half = config.headDim / 2;
  const out = new Float64Array(half);
  const s = config.ropeScaling;
  for (let i = 0; i < half; i++) {
    const base = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    switch (s.type) {
      case "none":
        out[i] = base;
        break;
      case "linear":
        out[i] = base / s.factor;
        break;
      case "frequency_factors":
        if (s.factors.length !== half) {
          throw new RangeError(
            `frequency_factors has ${s.factors.length} entries, head_dim ${config.headDim} needs ${half}`,
          );
        }
        out[i] = base / s.factors[i];
        break;
      case "llama3": {
        // transformers' _compute_llama3_parameters: keep high frequencies, divide low ones, blend between.
        const wavelen = (2 * Math.PI) / base;
        const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
        const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
        if (wavelen < highWavelen) out[i] = base;
        else if (wavelen > lowWavelen) out[i] = base / s.factor;
        else {
          const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
            (s.highFreqFactor - s.lowFreqFactor);
          out[i] = (1 - smooth) * base / s.factor + smooth * base;
        }
        break;
      }
    }
  }
  return out;
}
