import assert from "node:assert/strict";
import { headDimOf, ropeInvFreq } from "../lib/backend/rope_freqs.ts";

const llama32 = {
  hidden_size: 2048,
  num_attention_heads: 32,
  head_dim: 64,
  rope_theta: 500000,
  max_position_embeddings: 131072,
  rope_scaling: {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
};
const smol = { hidden_size: 576, num_attention_heads: 9, rope_theta: 100000 };

// Golden values: LlamaRotaryEmbedding(LlamaConfig(...)).inv_freq of transformers 5.24.0 / torch 2.13.0.
const golden: { name: string; config: Parameters<typeof ropeInvFreq>[0]; at: Record<number, number> }[] = [
  {
    name: "Llama-3.2-1B (llama3 scaling)",
    config: llama32,
    at: {
      0: 1.0,
      10: 0.016560440883040428,
      15: 0.0012905480107292533,
      16: 0.000429556705057621,
      18: 1.9461638657958247e-05,
      20: 8.570255886297673e-06,
      22: 3.7740544485131977e-06,
      31: 9.418306490260875e-08,
    },
  },
  {
    name: "SmolLM2-135M (default)",
    config: smol,
    at: { 0: 1.0, 1: 0.6978305578231812, 16: 0.003162277862429619, 31: 1.4330126759887207e-05 },
  },
  {
    name: "linear scaling, factor 4",
    config: { ...smol, rope_scaling: { rope_type: "linear", factor: 4 } },
    at: { 0: 0.25, 1: 0.1744576394557953, 16: 0.0007905694656074047, 31: 3.582531689971802e-06 },
  },
];

Deno.test("rope_freqs: inverse frequencies equal transformers' to the last fp32 bit or one ulp", () => {
  for (const { name, config, at } of golden) {
    const inv = ropeInvFreq(config);
    assert.equal(inv.length, headDimOf(config) / 2, name);
    for (const [i, want] of Object.entries(at)) {
      const got = inv[Number(i)];
      assert.ok(
        Math.abs(got - want) <= want * 2 ** -23,
        `${name}: inv_freq[${i}] = ${got}, transformers gives ${want}`,
      );
    }
  }
});

Deno.test("rope_freqs: llama3 keeps high frequencies, divides low ones by factor, blends between", () => {
  const base = ropeInvFreq({ ...llama32, rope_scaling: null });
  const scaled = ropeInvFreq(llama32);
  for (let i = 0; i < base.length; i++) {
    const wavelen = 2 * Math.PI / base[i];
    if (wavelen < 8192 / 4) assert.equal(scaled[i], base[i], `high frequency ${i}`);
    else if (wavelen > 8192) assert.equal(scaled[i], Math.fround(base[i] / 32), `low frequency ${i}`);
    else assert.ok(scaled[i] < base[i] && scaled[i] > base[i] / 32, `medium frequency ${i} lies between`);
  }
});

Deno.test("rope_freqs: new-style rope_parameters, legacy `type` and defaults are read as transformers reads them", () => {
  const viaParameters = ropeInvFreq({
    hidden_size: 2048,
    num_attention_heads: 32,
    head_dim: 64,
    max_position_embeddings: 8192,
    rope_parameters: { rope_type: "llama3", rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4 },
  });
  assert.deepEqual(viaParameters, ropeInvFreq(llama32));
  const legacy = ropeInvFreq({ ...smol, rope_scaling: { type: "linear", factor: 4 } });
  assert.deepEqual(legacy, ropeInvFreq({ ...smol, rope_scaling: { rope_type: "linear", factor: 4 } }));
  const theta10k = ropeInvFreq({ hidden_size: 64, num_attention_heads: 8 });
  assert.equal(theta10k[1], Math.fround(1 / Math.fround(10000 ** Math.fround(2 / 8))));
});

Deno.test("rope_freqs: unsupported configs fail with a message that says what to use", () => {
  const cases: [Parameters<typeof ropeInvFreq>[0], RegExp][] = [
    [{ ...smol, rope_scaling: { rope_type: "yarn", factor: 4 } }, /rope type "yarn" is not supported/],
    [{ ...smol, rope_scaling: { rope_type: "linear" } }, /needs a numeric factor/],
    [{ ...smol, partial_rotary_factor: 0.5 }, /partial_rotary_factor = 0.5 is not supported/],
    [{ hidden_size: 30, num_attention_heads: 2 }, /head_dim must be even, got 15/],
  ];
  for (const [config, message] of cases) assert.throws(() => ropeInvFreq(config), message);
});
