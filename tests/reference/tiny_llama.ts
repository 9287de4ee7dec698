/**
 * A tiny random Llama for model tests, and a float64 reference of its
 * forward (embedding, RMSNorm, projections with LoRA, RoPE, packed causal
 * GQA attention, SwiGLU, residuals, final norm, logits) built from the op
 * references beside this file.
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { fromBf16 } from "../../lib/backend/dtype.ts";
import { nf4Dequantize, nf4Quantize } from "../../lib/backend/nf4.ts";
import { positionsFromCuSeqlens } from "../../lib/backend/packed.ts";
import { Tensor } from "../../lib/backend/tensor.ts";
import { type LlamaConfig, parseLlamaConfig } from "../../lib/formats/llama_config.ts";
import { invFreqOf } from "../../lib/model/llama.ts";
import type { SequenceToPack } from "../../lib/model/batch.ts";
import type { LoraParams } from "../../lib/model/lora_params.ts";
import {
  LINEAR_NAMES,
  linearTensorName,
  llamaTensorSlots,
  LlamaWeights,
  type LoadedTensor,
} from "../../lib/model/weights.ts";
import { attentionForwardRef } from "./attention.ts";
import { crossEntropyRef, logitsRef } from "./cross_entropy.ts";
import { rmsnormRef } from "./norm.ts";
import type { Rng } from "./random.ts";
import { ropeRef } from "./rope.ts";
import { swigluRef } from "./swiglu.ts";

/** Sizes of a tiny model (head_dim 8: the smallest the attention kernels take). */
export interface TinySpec {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
}

/** A LlamaConfig for `spec` (head_dim = hidden / heads). */
export function tinyConfig(spec: TinySpec): LlamaConfig {
  return parseLlamaConfig({
    architectures: ["LlamaForCausalLM"],
    hidden_size: spec.hidden,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    intermediate_size: spec.intermediate,
    vocab_size: spec.vocab,
    tie_word_embeddings: spec.tied,
    rms_norm_eps: 1e-5,
  }, "tiny config");
}

/** Random weights by HF name: linears N(0, 1/in), embeddings N(0, 1), norms near 1. */
export function randomWeights(rng: Rng, config: LlamaConfig): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of llamaTensorSlots(config)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const values = s.role === "norm"
      ? Float32Array.from({ length: n }, () => 1 + 0.2 * rng.normal())
      : rng.normals(n, s.role === "linear" ? 1 / Math.sqrt(s.shape[1]) : 1);
    out.set(s.name, values);
  }
  return out;
}

/** The weights on the device: linears NF4 or dense, embeddings bf16 (f32 for an f32 base), norms f32. */
export function uploadWeights(
  backend: Backend,
  config: LlamaConfig,
  host: Map<string, Float32Array>,
  base: "nf4" | "bf16" | "f32",
): LlamaWeights {
  const tensors = new Map<string, LoadedTensor>();
  for (const s of llamaTensorSlots(config)) {
    const staged = backend.fromHost(host.get(s.name)!, s.shape, "f32");
    const keep = s.role === "norm" ? "f32" : s.role === "linear" ? base : base === "f32" ? "f32" : "bf16";
    if (keep === "nf4") {
      tensors.set(s.name, nf4Quantize(backend, staged));
      staged.free();
    } else if (keep === "bf16") {
      tensors.set(s.name, backend.convert(staged, "bf16"));
      staged.free();
    } else tensors.set(s.name, staged);
  }
  return LlamaWeights.fromTensors(config, tensors);
}

/** What the device holds, as f32 by HF name (NF4 dequantized, bf16 widened). */
export function weightsOnDevice(backend: Backend, w: LlamaWeights): Map<string, Float32Array> {
  const value = (t: LoadedTensor): Float32Array => {
    if (!(t instanceof Tensor)) {
      using d = nf4Dequantize(backend, t, "f32");
      return d.toHost();
    }
    return t.dtype === "bf16" ? fromBf16(t.toHost() as Uint16Array) : t.toHost() as Float32Array;
  };
  const out = new Map<string, Float32Array>([
    ["model.embed_tokens.weight", value(w.embeddings)],
    ["lm_head.weight", value(w.lmHead)],
    ["model.norm.weight", value(w.finalNorm)],
  ]);
  w.layers.forEach((layer, l) => {
    out.set(`model.layers.${l}.input_layernorm.weight`, value(layer.inputLayernorm));
    out.set(`model.layers.${l}.post_attention_layernorm.weight`, value(layer.postAttentionLayernorm));
    for (const name of LINEAR_NAMES) out.set(linearTensorName(l, name), value(layer.linear[name]));
  });
  return out;
}

/** Random A and nonzero random B (N(0, bScale²)), so every adapter changes the output. */
export function randomizeAdapters(lora: LoraParams, rng: Rng, bScale = 0.2): void {
  const p = lora.params();
  const r = lora.options.r;
  for (const m of lora.modules) {
    for (let i = 0; i < r * m.inFeatures; i++) p[m.offset + i] = rng.normal() / Math.sqrt(m.inFeatures);
    for (let i = 0; i < r * m.outFeatures; i++) p[m.offset + r * m.inFeatures + i] = bScale * rng.normal();
  }
  lora.setParams(p);
}

/** LoRA A and B by module name with their scale, as a reference takes them. */
export interface LoraRef {
  scale: number;
  modules: Map<string, { A: Float32Array; B: Float32Array; r: number }>;
}

/** The adapters' current values from the device. */
export function loraRef(lora: LoraParams): LoraRef {
  const peft = lora.toPeft();
  return {
    scale: lora.modules[0].adapter.scale,
    modules: new Map(peft.modules.map((m) => [m.module, { A: m.a, B: m.b, r: m.r }])),
  };
}

function linear(x: Float64Array, w: Float32Array, rows: number, inp: number, lora?: LoraRef, module?: string) {
  const out = w.length / inp;
  const y = new Float64Array(rows * out);
  const m = lora && module ? lora.modules.get(module) : undefined;
  for (let t = 0; t < rows; t++) {
    const xa = new Float64Array(m?.r ?? 0);
    if (m) { for (let j = 0; j < m.r; j++) for (let i = 0; i < inp; i++) xa[j] += x[t * inp + i] * m.A[j * inp + i]; }
    for (let o = 0; o < out; o++) {
      let acc = 0;
      for (let i = 0; i < inp; i++) acc += x[t * inp + i] * w[o * inp + i];
      if (m) { for (let j = 0; j < m.r; j++) acc += lora!.scale * xa[j] * m.B[o * m.r + j]; }
      y[t * out + o] = acc;
    }
  }
  return y;
}

/** The final-norm hidden states [T, D] of packed sequences, in float64. */
export function hiddenRef(
  config: LlamaConfig,
  w: Map<string, Float32Array>,
  tokens: ArrayLike<number>,
  cuSeqlens: Int32Array,
  lora?: LoraRef,
): Float64Array {
  const { hiddenSize: D, numHeads: H, numKvHeads: KV, headDim: hd, rmsNormEps: eps } = config;
  const T = tokens.length;
  const emb = w.get("model.embed_tokens.weight")!;
  let x = new Float64Array(T * D);
  for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) x[t * D + i] = emb[tokens[t] * D + i];
  const positions = positionsFromCuSeqlens(cuSeqlens);
  const invFreq = invFreqOf(config);
  const dims = { cuSeqlens, nHeads: H, nKvHeads: KV, headDim: hd, scale: 1 / Math.sqrt(hd) };
  for (let l = 0; l < config.numLayers; l++) {
    const name = (n: typeof LINEAR_NAMES[number]) => linearTensorName(l, n);
    const mod = (n: typeof LINEAR_NAMES[number]) => name(n).replace(/\.weight$/, "");
    const proj = (n: typeof LINEAR_NAMES[number], input: Float64Array, inp: number) =>
      linear(input, w.get(name(n))!, T, inp, lora, mod(n));
    let n1 = rmsnormRef(x, w.get(`model.layers.${l}.input_layernorm.weight`)!, D, eps).y;
    const q = ropeRef(proj("q_proj", n1, D), positions, invFreq, H);
    const k = ropeRef(proj("k_proj", n1, D), positions, invFreq, KV);
    const v = proj("v_proj", n1, D);
    const att = attentionForwardRef(q, k, v, dims).out;
    const o = proj("o_proj", att, H * hd);
    const mid = x.map((xi, i) => xi + o[i]);
    n1 = rmsnormRef(mid, w.get(`model.layers.${l}.post_attention_layernorm.weight`)!, D, eps).y;
    const act = swigluRef(proj("gate_proj", n1, D), proj("up_proj", n1, D));
    const down = proj("down_proj", act, config.intermediateSize);
    x = mid.map((m, i) => m + down[i]);
  }
  return rmsnormRef(x, w.get("model.norm.weight")!, D, eps).y;
}

/** Logits [T, V] of packed sequences, in float64. */
export function logitsOfRef(
  config: LlamaConfig,
  w: Map<string, Float32Array>,
  tokens: ArrayLike<number>,
  cuSeqlens: Int32Array,
  lora?: LoraRef,
): Float64Array {
  const h = hiddenRef(config, w, tokens, cuSeqlens, lora);
  return logitsRef(h, w.get("lm_head.weight")!, Array.from({ length: tokens.length }, (_, t) => t), config.hiddenSize);
}

/** The summed cross-entropy of the loss rows, in float64. */
export function lossRef(
  config: LlamaConfig,
  w: Map<string, Float32Array>,
  batch: { tokens: Int32Array; cuSeqlens: Int32Array; lossRows: Int32Array; targets: Int32Array },
  lora?: LoraRef,
): number {
  const h = hiddenRef(config, w, batch.tokens, batch.cuSeqlens, lora);
  const { rowLoss } = crossEntropyRef(h, w.get("lm_head.weight")!, batch.lossRows, batch.targets, config.hiddenSize);
  return rowLoss.reduce((a, b) => a + b, 0);
}

/**
 * Sequences of random token ids below `vocab`, one per length, whose completion starts at
 * `completionStart(length)`.
 *
 * @example
 * ```ts
 * import { Rng } from "./random.ts";
 * import { randomSequences } from "./tiny_llama.ts";
 * randomSequences(new Rng(1), [5, 3], 31, (n) => n - 2)[1].completionStart; // 1
 * ```
 */
export function randomSequences(
  rng: Rng,
  lengths: readonly number[],
  vocab: number,
  completionStart: (length: number) => number,
): SequenceToPack[] {
  return lengths.map((n) => ({
    tokens: Array.from({ length: n }, () => rng.int(0, vocab - 1)),
    completionStart: completionStart(n),
  }));
}
