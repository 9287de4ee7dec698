// Our transformer ops against transformers' Llama modules and torch, on the CPU in fp32:
// RMSNorm = LlamaRMSNorm (forward and input gradient); RoPE = LlamaRotaryEmbedding +
// apply_rotary_pos_emb for default, linear and llama3 configs (inverse frequencies, rotated q
// and k at positions restarting per packed sequence, and the gradient); attention =
// eager_attention_forward run on each sequence alone with a causal mask (output and dq, dk,
// dv); fused lm_head + cross-entropy = F.cross_entropy on the full logits (summed loss and
// dH), W in f32 and bf16.
import { attentionBackward, attentionForward } from "../../lib/backend/attention.ts";
import { openBackend } from "../../lib/backend/backend.ts";
import { linearCrossEntropy } from "../../lib/backend/cross_entropy.ts";
import { toBf16 } from "../../lib/backend/dtype.ts";
import { rmsnormBackward, rmsnormForward } from "../../lib/backend/norm.ts";
import { PackedBatch } from "../../lib/backend/packed.ts";
import { ropeBackward, ropeForward } from "../../lib/backend/rope.ts";
import { type RopeConfig, ropeInvFreq } from "../../lib/backend/rope_freqs.ts";
import { assertClose } from "../reference/compare.ts";
import { Rng } from "../reference/random.ts";
import { type OracleArray, runOracle, tensor } from "./harness.ts";

const rng = new Rng();
const seed = `seed ${rng.seed}`;

const rmsnormCases = [
  { name: "norm_smol", rows: 37, dim: 576, eps: 1e-5 },
  { name: "norm_odd", rows: 3, dim: 1001, eps: 1e-6 },
];

const llama3: RopeConfig = {
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
const ropeCases = [
  { name: "rope_llama3", config: llama3, lengths: [300, 5, 1, 77], nHeads: 4, nKvHeads: 2 },
  {
    name: "rope_default",
    config: { hidden_size: 576, num_attention_heads: 9, rope_theta: 100000 },
    lengths: [20, 33],
    nHeads: 3,
    nKvHeads: 1,
  },
  {
    name: "rope_linear",
    config: { hidden_size: 256, num_attention_heads: 8, rope_scaling: { rope_type: "linear", factor: 4 } },
    lengths: [200],
    nHeads: 2,
    nKvHeads: 2,
  },
];

const attentionCases = [
  { name: "attn_gqa", lengths: [70, 5, 130, 1], nHeads: 9, nKvHeads: 3, headDim: 64 },
  { name: "attn_mha", lengths: [64, 65], nHeads: 2, nKvHeads: 2, headDim: 128 },
  { name: "attn_small", lengths: [17, 3], nHeads: 8, nKvHeads: 1, headDim: 8 },
];

const ceCases = [
  { name: "ce_f32", T: 50, D: 96, V: 1000, rows: [49, 0, 7, 8, 30], w: "f32" },
  { name: "ce_bf16", T: 20, D: 64, V: 2049, rows: [3, 19, 11], w: "bf16" },
] as const;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const f32 = (shape: number[], scale = 1) => tensor("f32", shape, rng.normals(shape.reduce((a, b) => a * b), scale));
const inputs: Record<string, OracleArray> = {};
for (const c of rmsnormCases) {
  inputs[`${c.name}.x`] = f32([c.rows, c.dim], 2);
  inputs[`${c.name}.w`] = f32([c.dim]);
  inputs[`${c.name}.dy`] = f32([c.rows, c.dim]);
}
for (const c of ropeCases) {
  const T = sum(c.lengths), d = c.config.hidden_size / c.config.num_attention_heads;
  inputs[`${c.name}.q`] = f32([T, c.nHeads, d]);
  inputs[`${c.name}.k`] = f32([T, c.nKvHeads, d]);
  inputs[`${c.name}.dq`] = f32([T, c.nHeads, d]);
}
for (const c of attentionCases) {
  const T = sum(c.lengths);
  inputs[`${c.name}.q`] = f32([T, c.nHeads, c.headDim]);
  inputs[`${c.name}.k`] = f32([T, c.nKvHeads, c.headDim]);
  inputs[`${c.name}.v`] = f32([T, c.nKvHeads, c.headDim]);
  inputs[`${c.name}.dout`] = f32([T, c.nHeads, c.headDim]);
}
for (const c of ceCases) {
  inputs[`${c.name}.h`] = f32([c.T, c.D]);
  const w = rng.normals(c.V * c.D, 0.3);
  inputs[`${c.name}.w`] = c.w === "f32" ? tensor("f32", [c.V, c.D], w) : tensor("bf16", [c.V, c.D], toBf16(w));
  inputs[`${c.name}.rows`] = tensor("i32", [c.rows.length], Int32Array.from(c.rows));
  inputs[`${c.name}.targets`] = tensor("i32", [c.rows.length], Int32Array.from(c.rows, () => rng.int(0, c.V - 1)));
}

const oracle = await runOracle("transformer_ops_oracle.py", {
  rmsnorm: rmsnormCases,
  rope: ropeCases,
  attention: attentionCases,
  cross_entropy: ceCases,
}, inputs);
const data = (name: string) => inputs[name].data as Float32Array;

Deno.test("oracle: RMSNorm equals LlamaRMSNorm, forward and input gradient", async () => {
  using backend = await openBackend("cpu");
  for (const c of rmsnormCases) {
    using x = backend.fromHost(data(`${c.name}.x`), [c.rows, c.dim], "f32");
    using w = backend.fromHost(data(`${c.name}.w`), [c.dim], "f32");
    using dy = backend.fromHost(data(`${c.name}.dy`), [c.rows, c.dim], "f32");
    using y = backend.empty([c.rows, c.dim], "f32");
    using rstd = backend.empty([c.rows], "f32");
    using dx = backend.empty([c.rows, c.dim], "f32");
    rmsnormForward(backend, x, w, y, rstd, c.eps);
    rmsnormBackward(backend, x, w, rstd, dy, dx);
    assertClose(y.toHost(), oracle.get(`${c.name}.y`, "f32"), 1e-6, `${c.name} y ${seed}`);
    assertClose(dx.toHost(), oracle.get(`${c.name}.dx`, "f32"), 1e-5, `${c.name} dx ${seed}`);
  }
});

Deno.test("oracle: RoPE equals LlamaRotaryEmbedding + apply_rotary_pos_emb (default, linear, llama3)", async () => {
  using backend = await openBackend("cpu");
  for (const c of ropeCases) {
    const invFreq = ropeInvFreq(c.config);
    assertClose(invFreq, oracle.get(`${c.name}.inv_freq`, "f32"), 2 ** -23, `${c.name} inv_freq ${seed}`);
    using batch = PackedBatch.fromLengths(backend, c.lengths);
    using inv = backend.fromHost(invFreq, [invFreq.length], "f32");
    const angles = { positions: batch.positions, invFreq: inv };
    for (const [input, heads, output] of [["q", c.nHeads, "q_embed"], ["k", c.nKvHeads, "k_embed"]] as const) {
      using x = backend.fromHost(data(`${c.name}.${input}`), inputs[`${c.name}.${input}`].shape, "f32");
      ropeForward(backend, x, x, angles, heads);
      assertClose(x.toHost(), oracle.get(`${c.name}.${output}`, "f32"), 1e-6, `${c.name} ${output} ${seed}`);
    }
    using dq = backend.fromHost(data(`${c.name}.dq`), inputs[`${c.name}.dq`].shape, "f32");
    ropeBackward(backend, dq, dq, angles, c.nHeads);
    assertClose(dq.toHost(), oracle.get(`${c.name}.dq_in`, "f32"), 1e-6, `${c.name} gradient ${seed}`);
  }
});

Deno.test("oracle: attention equals transformers' eager attention run on each sequence alone", async () => {
  using backend = await openBackend("cpu");
  for (const c of attentionCases) {
    using batch = PackedBatch.fromLengths(backend, c.lengths);
    const heads = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const load = (key: string) => backend.fromHost(data(`${c.name}.${key}`), inputs[`${c.name}.${key}`].shape, "f32");
    using q = load("q");
    using k = load("k");
    using v = load("v");
    using dout = load("dout");
    using out = backend.empty(q.shape, "f32");
    using lse = backend.empty([c.nHeads, batch.T], "f32");
    using dq = backend.empty(q.shape, "f32");
    using dk = backend.empty(k.shape, "f32");
    using dv = backend.empty(v.shape, "f32");
    attentionForward(backend, batch, heads, q, k, v, out, lse);
    attentionBackward(backend, batch, heads, q, k, v, out, lse, { dout, dq, dk, dv });
    for (const [name, t] of [["out", out], ["dq", dq], ["dk", dk], ["dv", dv]] as const) {
      assertClose(t.toHost(), oracle.get(`${c.name}.${name}`, "f32"), 1e-5, `${c.name} ${name} ${seed}`);
    }
  }
});

Deno.test("oracle: fused lm_head + cross-entropy equals F.cross_entropy on the full logits", async () => {
  using backend = await openBackend("cpu");
  for (const c of ceCases) {
    using h = backend.fromHost(data(`${c.name}.h`), [c.T, c.D], "f32");
    const wIn = inputs[`${c.name}.w`];
    using w = wIn.dtype === "f32"
      ? backend.fromHost(wIn.data as Float32Array, [c.V, c.D], "f32")
      : backend.fromHost(wIn.data as Uint16Array, [c.V, c.D], "bf16");
    using rows = backend.fromHost(inputs[`${c.name}.rows`].data as Int32Array, [c.rows.length], "i32");
    using targets = backend.fromHost(inputs[`${c.name}.targets`].data as Int32Array, [c.rows.length], "i32");
    using lossSum = backend.empty([1], "f32");
    using dH = backend.filled([c.T, c.D], "f32");
    linearCrossEntropy(backend, h, w, rows, targets, { lossSum, dH });
    assertClose(lossSum.toHost(), oracle.get(`${c.name}.loss`, "f32"), 1e-6, `${c.name} loss ${seed}`);
    assertClose(dH.toHost(), oracle.get(`${c.name}.dh`, "f32"), 1e-5, `${c.name} dH ${seed}`);
  }
});
