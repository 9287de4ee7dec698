import assert from "node:assert/strict";
import {
  type LlamaConfig,
  LlamaConfigError,
  parseLlamaConfig,
  readLlamaConfig,
  ropeInverseFrequencies,
} from "../lib/formats/llama_config.ts";

const STORIES = new URL("../../shared/models/stories260K/hf/", import.meta.url).pathname;

// Real configs (trimmed to the fields that matter), as their Hub repos publish them.
const SMOLLM2_135M = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  rope_scaling: null,
  tie_word_embeddings: true,
  hidden_act: "silu",
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 2,
  pretraining_tp: 1,
};
const LLAMA_32_1B = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    factor: 32,
    high_freq_factor: 4,
    low_freq_factor: 1,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  tie_word_embeddings: true,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
};
const TINYLLAMA = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  model_type: "llama",
};
const MISTRAL_V03 = {
  architectures: ["MistralForCausalLM"],
  model_type: "mistral",
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32768,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000,
  sliding_window: null,
  bos_token_id: 1,
  eos_token_id: 2,
};

const VALID: { what: string; json: Record<string, unknown>; want: Partial<LlamaConfig> }[] = [
  {
    what: "SmolLM2-135M",
    json: SMOLLM2_135M,
    want: {
      hiddenSize: 576,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      intermediateSize: 1536,
      vocabSize: 49152,
      ropeTheta: 100000,
      ropeScaling: { type: "none" },
      tieWordEmbeddings: true,
      eosTokenIds: [2],
      padTokenId: 2,
    },
  },
  {
    what: "Llama 3.2 1B (llama3 scaling, several eos)",
    json: LLAMA_32_1B,
    want: {
      headDim: 64,
      ropeTheta: 500000,
      ropeScaling: {
        type: "llama3",
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      padTokenId: null,
      maxPositionEmbeddings: 131072,
    },
  },
  {
    what: "transformers 5's rope_parameters",
    json: {
      ...LLAMA_32_1B,
      rope_scaling: undefined,
      rope_theta: undefined,
      rope_parameters: {
        rope_type: "llama3",
        rope_theta: 500000,
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    },
    want: {
      ropeTheta: 500000,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
    },
  },
  {
    what: "TinyLlama, defaults for rope_theta and pad",
    json: TINYLLAMA,
    want: { numKvHeads: 4, headDim: 64, ropeTheta: 10000, tieWordEmbeddings: false, padTokenId: null, bosTokenId: 1 },
  },
  {
    what: "linear scaling in the old 'type' spelling",
    json: { ...TINYLLAMA, rope_scaling: { type: "linear", factor: 4 } },
    want: { ropeScaling: { type: "linear", factor: 4 } },
  },
  {
    what: "rope_type default is no scaling",
    json: { ...TINYLLAMA, rope_parameters: { rope_type: "default", rope_theta: 1e6 } },
    want: { ropeScaling: { type: "none" }, ropeTheta: 1e6 },
  },
  {
    what: "only model_type, transformers' defaults for the rest",
    json: {
      model_type: "llama",
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 100,
      vocab_size: 10,
    },
    want: {
      architecture: "LlamaForCausalLM",
      numKvHeads: 4,
      headDim: 16,
      rmsNormEps: 1e-6,
      maxPositionEmbeddings: 2048,
      bosTokenId: 1,
      eosTokenIds: [2],
      tieWordEmbeddings: false,
    },
  },
  {
    what: "Mistral v0.3 (no sliding window)",
    json: MISTRAL_V03,
    want: { architecture: "MistralForCausalLM", numKvHeads: 8, headDim: 128 },
  },
  {
    what: "Mistral with a window covering the context",
    json: { ...MISTRAL_V03, sliding_window: 32768 },
    want: { numLayers: 32 },
  },
  { what: "eos null", json: { ...TINYLLAMA, eos_token_id: null }, want: { eosTokenIds: [] } },
];

Deno.test("llama config: real Llama-family configs parse to the right shape", async (t) => {
  for (const c of VALID) {
    await t.step(c.what, () => {
      const got = parseLlamaConfig(JSON.parse(JSON.stringify(c.json)), "config.json");
      for (const [key, value] of Object.entries(c.want)) assert.deepEqual(got[key as keyof LlamaConfig], value, key);
    });
  }
});

Deno.test("llama config: the real stories260K config.json, from its folder or the file", async () => {
  const fromDir = await readLlamaConfig(STORIES);
  const fromFile = await readLlamaConfig(`${STORIES}config.json`);
  assert.deepEqual(fromDir, fromFile);
  assert.deepEqual(fromDir, {
    architecture: "LlamaForCausalLM",
    hiddenSize: 64,
    numLayers: 5,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 8,
    intermediateSize: 172,
    vocabSize: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: { type: "none" },
    tieWordEmbeddings: true,
    bosTokenId: 1,
    eosTokenIds: [2],
    padTokenId: null,
    maxPositionEmbeddings: 512,
  });
  await assert.rejects(
    readLlamaConfig("/nonexistent/model"),
    /\/nonexistent\/model\/config.json: cannot read a JSON config/,
  );
});

const REFUSED: { what: string; json: unknown; error: RegExp }[] = [
  {
    what: "Qwen2",
    json: { ...TINYLLAMA, architectures: ["Qwen2ForCausalLM"], model_type: "qwen2" },
    error: /architectures \["Qwen2ForCausalLM"\] is not a Llama-family causal LM/,
  },
  {
    what: "GPT-2 by model_type",
    json: { model_type: "gpt2", n_embd: 768 },
    error: /model_type "gpt2" is not a Llama-family causal LM/,
  },
  { what: "no architecture at all", json: { hidden_size: 8 }, error: /model_type undefined is not a Llama-family/ },
  {
    what: "a Llama with a classification head",
    json: { ...TINYLLAMA, architectures: ["LlamaForSequenceClassification"] },
    error: /\["LlamaForSequenceClassification"\] is not a Llama-family causal LM/,
  },
  {
    what: "a mislabelled model_type",
    json: { ...TINYLLAMA, model_type: "gemma" },
    error: /model_type "gemma" is not llama or mistral/,
  },
  {
    what: "Mistral with a real sliding window",
    json: { ...MISTRAL_V03, sliding_window: 4096 },
    error: /sliding_window 4096 < max_position_embeddings 32768/,
  },
  { what: "GELU", json: { ...TINYLLAMA, hidden_act: "gelu" }, error: /hidden_act "gelu" is not supported/ },
  { what: "attention bias", json: { ...TINYLLAMA, attention_bias: true }, error: /attention_bias is true/ },
  { what: "mlp bias", json: { ...TINYLLAMA, mlp_bias: true }, error: /mlp_bias is true/ },
  {
    what: "yarn scaling",
    json: { ...TINYLLAMA, rope_scaling: { rope_type: "yarn", factor: 4 } },
    error: /rope_scaling type "yarn" is not supported/,
  },
  {
    what: "llama3 scaling missing a factor",
    json: { ...LLAMA_32_1B, rope_scaling: { rope_type: "llama3", factor: 8 } },
    error: /needs a positive "low_freq_factor"/,
  },
  { what: "missing hidden_size", json: { ...TINYLLAMA, hidden_size: undefined }, error: /"hidden_size" is missing/ },
  {
    what: "fractional layers",
    json: { ...TINYLLAMA, num_hidden_layers: 2.5 },
    error: /"num_hidden_layers" must be a positive integer, got 2.5/,
  },
  {
    what: "heads not a multiple of kv heads",
    json: { ...TINYLLAMA, num_key_value_heads: 5 },
    error: /32 is not a multiple of num_key_value_heads 5/,
  },
  {
    what: "pre-quantized",
    json: { ...TINYLLAMA, quantization_config: { quant_method: "gptq" } },
    error: /pre-quantized \(quantization_config.quant_method "gptq"\)/,
  },
  {
    what: "bad eos",
    json: { ...TINYLLAMA, eos_token_id: "</s>" },
    error: /"eos_token_id" must be a token id, a list of them or null/,
  },
  { what: "negative eps", json: { ...TINYLLAMA, rms_norm_eps: -1 }, error: /"rms_norm_eps" must be a positive number/ },
  { what: "odd head_dim", json: { ...TINYLLAMA, head_dim: 7 }, error: /head_dim 7 is odd/ },
  { what: "not an object", json: [1, 2], error: /a config must be a JSON object/ },
];

Deno.test("llama config: non-Llama and unsupported configs are refused, naming what was found", async (t) => {
  for (const c of REFUSED) {
    await t.step(c.what, () => {
      const json = JSON.parse(JSON.stringify(c.json));
      assert.throws(
        () => parseLlamaConfig(json, "/m/config.json"),
        (e: unknown) => e instanceof LlamaConfigError && e.source === "/m/config.json" && c.error.test(e.message),
        `expected ${c.error}`,
      );
    });
  }
});

/** llama.cpp's convert_hf_to_gguf: the per-frequency divisors it stores as rope_freqs for llama3 scaling. */
function llamaCppRopeFactors(
  headDim: number,
  theta: number,
  factor: number,
  low: number,
  high: number,
  old: number,
): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < old / high) out[i] = 1;
    else if (wavelen > old / low) out[i] = factor;
    else {
      const smooth = (old / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

Deno.test("llama config: RoPE frequencies for none, linear, llama3 and llama.cpp's factors agree", () => {
  const headDim = 64, theta = 500000;
  const base = Float64Array.from({ length: 32 }, (_, i) => theta ** (-(2 * i) / headDim));
  const none = ropeInverseFrequencies({ headDim, ropeTheta: theta, ropeScaling: { type: "none" } });
  const linear = ropeInverseFrequencies({ headDim, ropeTheta: theta, ropeScaling: { type: "linear", factor: 4 } });
  assert.ok(Math.max(...linear.map((f, i) => Math.abs(f - base[i] / 4) / f)) < 1e-15);
  const llama3 = ropeInverseFrequencies({
    headDim,
    ropeTheta: theta,
    ropeScaling: {
      type: "llama3",
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
  });
  // High frequencies untouched, low ones divided by the factor, and some blended in between.
  assert.equal(llama3[0], base[0]);
  assert.ok(Math.abs(llama3[31] - base[31] / 32) < 1e-18);
  assert.ok(llama3.some((f, i) => f < base[i] && f > base[i] / 32), "a blended band exists");
  const factors = llamaCppRopeFactors(headDim, theta, 32, 1, 4, 8192);
  const viaFactors = ropeInverseFrequencies({
    headDim,
    ropeTheta: theta,
    ropeScaling: { type: "frequency_factors", factors },
  });
  // Frequencies span six decades: compare each one relatively; the factors are float32, hence 1e-7.
  const worst = Math.max(...llama3.map((f, i) => Math.abs(viaFactors[i] - f) / f));
  assert.ok(worst < 1e-7, `worst per-frequency relative error ${worst}`);
  assert.ok(Math.max(...none.map((f, i) => Math.abs(f - base[i]) / f)) < 1e-15);
  assert.throws(
    () => ropeInverseFrequencies({ headDim: 8, ropeTheta: 1e4, ropeScaling: { type: "frequency_factors", factors } }),
    /has 32 entries, head_dim 8 needs 4/,
  );
});
