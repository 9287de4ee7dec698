/**
 * RoPE inverse frequencies from a model's config.json, exactly as
 * transformers computes them (its `default`, `linear` and `llama3` rope
 * init functions), fp32 rounding step by step so the values match torch's.
 *
 * @module
 */

/** RoPE scaling parameters: `rope_scaling` (old configs) or `rope_parameters` (new). */
export interface RopeScaling {
  /** "default", "linear" or "llama3" (`type` in older configs). */
  rope_type?: string;
  /** Alias of rope_type in older configs. */
  type?: string;
  /** The base (inside rope_parameters). */
  rope_theta?: number;
  /** Scale of the frequencies (linear, llama3). */
  factor?: number;
  /** llama3: wavelengths above original / low_freq_factor are divided by factor. */
  low_freq_factor?: number;
  /** llama3: wavelengths below original / high_freq_factor are kept. */
  high_freq_factor?: number;
  /** llama3: the pretraining context length (default max_position_embeddings). */
  original_max_position_embeddings?: number;
  /** Fraction of head_dim that rotates (only 1 is supported). */
  partial_rotary_factor?: number;
}

/** The fields of a Llama config.json that RoPE reads. */
export interface RopeConfig {
  /** Width of the residual stream. */
  hidden_size: number;
  /** Query heads. */
  num_attention_heads: number;
  /** Defaults to hidden_size / num_attention_heads. */
  head_dim?: number;
  /** RoPE base (default 10000). */
  rope_theta?: number;
  /** Context length the config declares. */
  max_position_embeddings?: number;
  /** Old-style scaling block. */
  rope_scaling?: RopeScaling | null;
  /** New-style block (transformers >= 5); wins over rope_scaling. */
  rope_parameters?: RopeScaling | null;
  /** Fraction of head_dim that rotates (only 1 is supported). */
  partial_rotary_factor?: number;
}

const f = Math.fround;

/** head_dim of a config: its own field, or hidden_size / num_attention_heads. */
export function headDimOf(config: RopeConfig): number {
  return config.head_dim ?? Math.floor(config.hidden_size / config.num_attention_heads);
}

function need(value: number | undefined, name: string, type: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`rope_scaling of type "${type}" needs a numeric ${name} in config.json`);
  }
  return value;
}

/**
 * The inverse frequencies [head_dim / 2] of a Llama-family config, as
 * transformers' LlamaRotaryEmbedding computes them.
 *
 * @example
 * ```ts
 * import { ropeInvFreq } from "./rope_freqs.ts";
 * const invFreq = ropeInvFreq({ hidden_size: 64, num_attention_heads: 8, rope_theta: 10000 });
 * invFreq.length; // 4
 * invFreq[1]; // ≈ 0.1 (10000^(-2/8))
 * ```
 */
export function ropeInvFreq(config: RopeConfig): Float32Array {
  const params: RopeScaling = { ...(config.rope_parameters ?? config.rope_scaling ?? {}) };
  const type = params.rope_type ?? params.type ?? "default";
  const base = params.rope_theta ?? config.rope_theta ?? 10000;
  const partial = params.partial_rotary_factor ?? config.partial_rotary_factor ?? 1;
  if (partial !== 1) throw new Error(`partial_rotary_factor = ${partial} is not supported (Llama models use 1)`);
  const dim = headDimOf(config);
  if (!(dim >= 2 && dim % 2 === 0)) throw new Error(`head_dim must be even, got ${dim}`);
  // inv_freq = 1 / base^(arange(0, dim, 2) / dim), each op in fp32.
  const invFreq = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) invFreq[i] = f(1 / f(Math.pow(base, f((2 * i) / dim))));
  switch (type) {
    case "default":
      return invFreq;
    case "linear": {
      const factor = need(params.factor, "factor", type);
      return invFreq.map((x) => f(x / factor));
    }
    case "llama3":
      return llama3(invFreq, params, config);
    default:
      throw new Error(`rope type "${type}" is not supported: use a model with default, linear or llama3 RoPE`);
  }
}

/** transformers' _compute_llama3_parameters, fp32 op by op. */
function llama3(invFreq: Float32Array, params: RopeScaling, config: RopeConfig): Float32Array {
  const factor = need(params.factor, "factor", "llama3");
  const low = need(params.low_freq_factor, "low_freq_factor", "llama3");
  const high = need(params.high_freq_factor, "high_freq_factor", "llama3");
  const original = need(
    params.original_max_position_embeddings ?? config.max_position_embeddings,
    "original_max_position_embeddings",
    "llama3",
  );
  const lowFreqWavelen = original / low;
  const highFreqWavelen = original / high;
  const twoPi = f(2 * Math.PI);
  return invFreq.map((inv) => {
    // torch evaluates `scalar / tensor` as reciprocal(tensor) * scalar.
    const wavelen = f(f(1 / inv) * twoPi);
    if (wavelen < highFreqWavelen) return inv;
    if (wavelen > lowFreqWavelen) return f(inv / factor);
    const smooth = f(f(f(f(1 / wavelen) * original) - low) / (high - low));
    return f(f(f(f(1 - smooth) * inv) / factor) + f(smooth * inv));
  });
}
