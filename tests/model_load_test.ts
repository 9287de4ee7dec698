import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { toBf16 } from "../lib/backend/dtype.ts";
import { nf4Dequantize, nf4Quantize, type Nf4Weight } from "../lib/backend/nf4.ts";
import { Tensor } from "../lib/backend/tensor.ts";
import { SafetensorsCheckpoint, type TensorToWrite, writeSafetensors } from "../lib/formats/safetensors.ts";
import { RepoCache } from "../lib/hub/cache.ts";
import { defaultModelSource, loracCacheDir, SMOLLM2_GGUF, smollm2Gguf } from "../lib/model/default_model.ts";
import { describeModel, type LoadedModel, loadModel, ModelLoadError } from "../lib/model/load.ts";
import { type LinearName, linearTensorName, llamaTensorSlots, type LoadedTensor } from "../lib/model/weights.ts";
import type { Tokenizer } from "../lib/tokenizer/tokenizer.ts";
import { relativeError } from "./reference/compare.ts";
import { Rng } from "./reference/random.ts";

const STORIES = decodeURIComponent(new URL("../../shared/models/stories260K/hf", import.meta.url).pathname);
const quiet = { progress: false, tokenizer: false } as const;

/** The loaded tensor of HF name `name` (the lm_head is the embeddings when tied). */
function tensorOf(model: LoadedModel<Tokenizer | null>, name: string): LoadedTensor {
  const w = model.weights;
  if (name === "model.embed_tokens.weight") return w.embeddings;
  if (name === "lm_head.weight") return w.lmHead;
  if (name === "model.norm.weight") return w.finalNorm;
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name)!;
  const layer = w.layers[Number(m[1])];
  if (m[2] === "input_layernorm") return layer.inputLayernorm;
  if (m[2] === "post_attention_layernorm") return layer.postAttentionLayernorm;
  return layer.linear[m[2].split(".")[1] as LinearName];
}

/** Every byte of a tensor (packed codes then absmax for NF4). */
function bytesOf(t: LoadedTensor): Uint8Array[] {
  const raw = (x: Tensor) => {
    const h = x.toHost();
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  };
  return t instanceof Tensor ? [raw(t)] : [raw(t.packed), raw(t.absmax)];
}

Deno.test("model load: stories260K fp32 and bf16 files become NF4 linears, bf16 embeddings, norms as asked", async () => {
  using backend = await openBackend("cpu");
  const start = backend.liveAllocations();
  const cases = [
    { file: "model.safetensors", blocksize: 64, normDtype: "f32" },
    { file: "model.bf16.safetensors", blocksize: 64, normDtype: "f32" },
    { file: "model.safetensors", blocksize: 128, normDtype: "bf16" },
  ] as const;
  for (const { file, blocksize, normDtype } of cases) {
    const what = `${file}, blocksize ${blocksize}, norms ${normDtype}`;
    using ckpt = await SafetensorsCheckpoint.open(`${STORIES}/${file}`);
    {
      using model = await loadModel(`${STORIES}/${file}`, backend, { ...quiet, blocksize, normDtype });
      const c = model.config;
      assert.deepEqual(
        [c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize],
        [64, 5, 8, 4, 8, 172, 512],
        what,
      );
      assert.equal(model.tokenizer, null);
      assert.equal(model.weights.layers.length, 5);
      assert.ok(model.weights.tied && model.weights.lmHead === model.weights.embeddings, `${what}: tied lm_head`);
      assert.equal(model.source.format, "safetensors");
      assert.equal(model.source.fromHub, false);
      assert.deepEqual(model.source.dtypes, { [file.includes("bf16") ? "BF16" : "F32"]: 47 });

      let deviceBytes = 0;
      for (const slot of llamaTensorSlots(c)) {
        const values = await ckpt.readFloat32(slot.name);
        const got = tensorOf(model, slot.name);
        const where = `${what}: ${slot.name}`;
        if (slot.role === "linear") {
          const q = got as Nf4Weight;
          assert.deepEqual(q.packed.shape, slot.shape, where);
          assert.equal(q.blocksize, blocksize, where);
          // Byte-equal to quantizing the file's values with the same kernel.
          using staged = backend.fromHost(values, slot.shape, "f32");
          using want = nf4Quantize(backend, staged, blocksize);
          assert.deepEqual(bytesOf(q), bytesOf(want), where);
          // And close to the file's values, so no transpose or permutation slipped in.
          using back = nf4Dequantize(backend, q, "f32");
          const err = relativeError(back.toHost(), values);
          assert.ok(err < 0.15, `${where}: NF4 relative error ${err}`);
        } else {
          const t = got as Tensor<"f32" | "bf16">;
          assert.deepEqual(t.shape, slot.shape, where);
          const dtype = slot.role === "norm" ? normDtype : "bf16";
          assert.equal(t.dtype, dtype, where);
          assert.deepEqual(t.toHost(), dtype === "f32" ? values : toBf16(values), where);
        }
        deviceBytes += bytesOf(got).reduce((n, b) => n + b.length, 0);
      }
      assert.equal(model.weights.deviceBytes, deviceBytes, what);
      assert.equal(model.stats.deviceBytes, deviceBytes, what);
      assert.equal(model.stats.tensors, 47);
      assert.match(describeModel(model), /260\.0K parameters — 5 layers, hidden 64, 8 query \/ 4 key-value heads/);
    }
    assert.equal(backend.liveAllocations(), start, `${what}: every tensor freed on dispose`);
  }
});

Deno.test("model load: streaming — one tensor at a time, staging freed before the next, host peak one tensor", async () => {
  using backend = await openBackend("cpu");
  const start = backend.liveAllocations();
  using ckpt = await SafetensorsCheckpoint.open(`${STORIES}/model.safetensors`);
  let kept = 0;
  const seen: string[] = [];
  {
    using model = await loadModel(STORIES, backend, {
      ...quiet,
      onTensor(e) {
        seen.push(e.name);
        assert.equal(e.index, seen.length - 1);
        // What stays on the device is the final form only: 2 tensors per NF4 weight, 1 otherwise.
        kept += e.role === "linear" ? 2 : 1;
        assert.equal(backend.liveAllocations(), start + kept, `after ${e.name}: a staging tensor was left behind`);
        // An F32 tensor is uploaded from its own bytes: the host holds exactly one copy of it.
        assert.equal(e.hostBytes, ckpt.info(e.name).byteLength, e.name);
      },
    });
    assert.deepEqual(seen, llamaTensorSlots(model.config).map((s) => s.name));
    // The largest tensor is the 512 x 64 f32 embedding.
    assert.equal(model.stats.hostPeakBytes, 512 * 64 * 4);
    assert.ok(model.stats.rssPeakBytes > 0);
  }
  assert.equal(backend.liveAllocations(), start);

  // A failure half-way (here the hook throws) frees every tensor loaded so far.
  await assert.rejects(
    loadModel(STORIES, backend, {
      ...quiet,
      onTensor(e) {
        if (e.index === 10) throw new Error("stop at the 11th tensor");
      },
    }),
    /stop at the 11th tensor/,
  );
  assert.equal(backend.liveAllocations(), start);
});

// ---- A GGUF built from the stories260K weights, as llama.cpp's converter would write it -----------------

/** llama.cpp's convert_hf_to_gguf `permute` of Q/K rows: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2). */
function llamaCppPermute(w: Float32Array, nHead: number, cols: number): Float32Array {
  const half = w.length / cols / nHead / 2;
  const out = new Float32Array(w.length);
  let dst = 0;
  for (let h = 0; h < nHead; h++) {
    for (let a = 0; a < half; a++) {
      for (let b = 0; b < 2; b++) {
        const src = ((h * 2 + b) * half + a) * cols;
        out.set(w.subarray(src, src + cols), dst);
        dst += cols;
      }
    }
  }
  return out;
}

type GgufKv = ["u32", number] | ["f32", number] | ["bool", boolean] | ["str", string] | ["strs", string[]] | [
  "i32s",
  number[],
];

/** A GGUF v3 file: metadata, then F32 tensors (HF shapes, written as ggml dims), 32-byte aligned. */
function buildGguf(kv: Record<string, GgufKv>, tensors: { name: string; shape: number[]; data: Float32Array }[]) {
  const parts: Uint8Array[] = [];
  const num = (size: number, set: (v: DataView) => void) => {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    parts.push(b);
  };
  const u32 = (v: number) => num(4, (d) => d.setUint32(0, v, true));
  const u64 = (v: number) => num(8, (d) => d.setBigUint64(0, BigInt(v), true));
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    parts.push(b);
  };
  parts.push(new TextEncoder().encode("GGUF"));
  u32(3);
  u64(tensors.length);
  u64(Object.keys(kv).length);
  const TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, array: 9 };
  for (const [key, [type, value]] of Object.entries(kv)) {
    str(key);
    if (type === "u32") (u32(TYPE.u32), u32(value));
    else if (type === "f32") (u32(TYPE.f32), num(4, (d) => d.setFloat32(0, value, true)));
    else if (type === "bool") (u32(TYPE.bool), parts.push(new Uint8Array([value ? 1 : 0])));
    else if (type === "str") (u32(TYPE.str), str(value));
    else if (type === "strs") (u32(TYPE.array), u32(TYPE.str), u64(value.length), value.forEach(str));
    else {(u32(TYPE.array),
        u32(TYPE.i32),
        u64(value.length),
        value.forEach((v) => num(4, (d) => d.setInt32(0, v, true))));}
  }
  let offset = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.shape.length);
    [...t.shape].reverse().forEach(u64);
    u32(0); // GGML_TYPE_F32
    u64(offset);
    offset += Math.ceil(t.data.byteLength / 32) * 32;
  }
  const header = parts.reduce((n, p) => n + p.length, 0);
  const dataStart = Math.ceil(header / 32) * 32;
  const out = new Uint8Array(dataStart + offset);
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  at = dataStart;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += Math.ceil(t.data.byteLength / 32) * 32;
  }
  return out;
}

const GGUF_NAMES: Record<string, string> = {
  input_layernorm: "attn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  post_attention_layernorm: "ffn_norm",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};

/** stories260K as a GGUF (Q/K permuted as llama.cpp stores them) with a small byte-level BPE tokenizer. */
async function storiesGguf(path: string): Promise<void> {
  using ckpt = await SafetensorsCheckpoint.open(`${STORIES}/model.safetensors`);
  const tensors = [];
  for (const name of ckpt.names()) {
    let data = await ckpt.readFloat32(name);
    const shape = [...ckpt.info(name).shape];
    const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
    const gguf = name === "model.embed_tokens.weight"
      ? "token_embd.weight"
      : name === "model.norm.weight"
      ? "output_norm.weight"
      : `blk.${m![1]}.${GGUF_NAMES[m![2]]}.weight`;
    if (name.endsWith("q_proj.weight")) data = llamaCppPermute(data, 8, 64);
    if (name.endsWith("k_proj.weight")) data = llamaCppPermute(data, 4, 64);
    tensors.push({ name: gguf, shape, data });
  }
  const tokens = ["<unk>", "<s>", "</s>", "h", "i", "hi", ...Array.from({ length: 506 }, (_, i) => `x${i + 6}`)];
  const bytes = buildGguf({
    "general.architecture": ["str", "llama"],
    "llama.block_count": ["u32", 5],
    "llama.context_length": ["u32", 512],
    "llama.embedding_length": ["u32", 64],
    "llama.feed_forward_length": ["u32", 172],
    "llama.attention.head_count": ["u32", 8],
    "llama.attention.head_count_kv": ["u32", 4],
    "llama.rope.freq_base": ["f32", 10000],
    "llama.attention.layer_norm_rms_epsilon": ["f32", 1e-5],
    "tokenizer.ggml.model": ["str", "gpt2"],
    "tokenizer.ggml.pre": ["str", "default"],
    "tokenizer.ggml.tokens": ["strs", tokens],
    "tokenizer.ggml.token_type": ["i32s", tokens.map((_, i) => (i < 3 ? 3 : 1))],
    "tokenizer.ggml.merges": ["strs", ["h i"]],
    "tokenizer.ggml.bos_token_id": ["u32", 1],
    "tokenizer.ggml.eos_token_id": ["u32", 2],
    "tokenizer.ggml.add_bos_token": ["bool", true],
  }, tensors);
  await Deno.writeFile(path, bytes);
}

Deno.test("model load: a GGUF of stories260K loads byte for byte like the HF folder, tokenizer from its metadata", async () => {
  using backend = await openBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    await storiesGguf(`${dir}/stories260K.gguf`);
    using fromHf = await loadModel(STORIES, backend, quiet);
    using fromGguf = await loadModel(`${dir}/stories260K.gguf`, backend, { progress: false });
    assert.equal(fromGguf.source.format, "gguf");
    assert.deepEqual(fromGguf.source.dtypes, { F32: 47 });
    assert.ok(fromGguf.weights.tied);
    for (const slot of llamaTensorSlots(fromHf.config)) {
      assert.deepEqual(bytesOf(tensorOf(fromGguf, slot.name)), bytesOf(tensorOf(fromHf, slot.name)), slot.name);
    }
    assert.deepEqual(fromGguf.tokenizer.encode("hi"), [1, 5]);
    assert.equal(fromGguf.tokenizer.vocabSize, 512);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- Folders with something wrong -----------------------------------------------------------------------

/** Copies stories260K's config and weights into a temp folder, letting `edit` change either first. */
async function storiesFolder(
  edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Record<string, TensorToWrite>) => void } = {},
): Promise<string> {
  const dir = await Deno.makeTempDir();
  const config = JSON.parse(await Deno.readTextFile(`${STORIES}/config.json`));
  edit.config?.(config);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  using ckpt = await SafetensorsCheckpoint.open(`${STORIES}/model.safetensors`);
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of ckpt.names()) {
    tensors[name] = { dtype: "F32", shape: ckpt.info(name).shape, data: await ckpt.readFloat32(name) };
  }
  edit.tensors?.(tensors);
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  return dir;
}

/** A byte-level BPE tokenizer.json of `size` tokens (ids 0..size-1), with a tokenizer_config.json naming BOS. */
async function writeTokenizer(dir: string, size: number): Promise<string> {
  const vocab: Record<string, number> = { "<s>": 0, a: 1, "Ġ": 2, "Ġa": 3 };
  for (let i = 4; i < size; i++) vocab[`t${i}`] = i;
  await Deno.writeTextFile(
    `${dir}/tokenizer.json`,
    JSON.stringify({
      added_tokens: [{ id: 0, content: "<s>", special: true }],
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
      post_processor: null,
      decoder: { type: "ByteLevel" },
      model: { type: "BPE", vocab, merges: ["Ġ a"] },
    }),
  );
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify({ bos_token: "<s>", add_bos_token: true }));
  return `${dir}/tokenizer.json`;
}

Deno.test("model load: the tokenizer comes from the folder, an explicit tokenizer.json, or is left out on request", async () => {
  using backend = await openBackend("cpu");
  const dir = await storiesFolder();
  const other = await Deno.makeTempDir();
  try {
    await assert.rejects(
      loadModel(dir, backend, { progress: false }),
      (e: unknown) =>
        e instanceof ModelLoadError && e.path === `${dir}/tokenizer.json` && /missing/.test(e.message) &&
        /tokenizer: false/.test(e.message),
    );
    const explicit = await writeTokenizer(other, 300);
    {
      using model = await loadModel(dir, backend, { progress: false, tokenizer: explicit });
      assert.deepEqual(model.tokenizer.encode("a a"), [0, 1, 3]);
    }
    await writeTokenizer(dir, 512);
    {
      using model = await loadModel(dir, backend, { progress: false });
      assert.equal(model.tokenizer.vocabSize, 512);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("model load: clear errors, naming the file, for a checkpoint that does not fit its config", async () => {
  using backend = await openBackend("cpu");
  const start = backend.liveAllocations();
  const rng = new Rng();
  const q0 = linearTensorName(0, "q_proj");
  const cases: {
    what: string;
    folder: () => Promise<string>;
    options?: { tokenizer: string };
    file: string;
    message: RegExp;
  }[] = [
    {
      what: "no config.json",
      folder: async () => {
        const dir = await storiesFolder();
        await Deno.remove(`${dir}/config.json`);
        return dir;
      },
      file: "config.json",
      message: /config\.json: missing: a Hugging Face model folder needs config\.json/,
    },
    {
      what: "a missing tensor",
      folder: () => storiesFolder({ tensors: (t) => delete t[linearTensorName(3, "up_proj")] }),
      file: "model.safetensors",
      message: /missing 1 tensor\(s\) the config .* requires: "model\.layers\.3\.mlp\.up_proj\.weight"/,
    },
    {
      what: "a shape the config does not give",
      folder: () => storiesFolder({ config: (c) => (c.intermediate_size = 176) }),
      file: "model.safetensors",
      message:
        /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[172,64\] but the config .* gives \[176,64\]/,
    },
    {
      what: "a tensor of another architecture",
      folder: () =>
        storiesFolder({
          tensors: (t) => (t["model.layers.0.self_attn.q_proj.bias"] = {
            dtype: "F32",
            shape: [64],
            data: rng.normals(64),
          }),
        }),
      file: "model.safetensors",
      message: /tensors a Llama with this config does not have: "model\.layers\.0\.self_attn\.q_proj\.bias"/,
    },
    {
      what: "integer weights",
      folder: () =>
        storiesFolder({ tensors: (t) => (t[q0] = { dtype: "I32", shape: [64, 64], data: new Int32Array(64 * 64) }) }),
      file: "model.safetensors",
      message: /tensor "model\.layers\.0\.self_attn\.q_proj\.weight" is I32; lorac loads float weights/,
    },
    {
      what: "an untied config without lm_head.weight",
      folder: () => storiesFolder({ config: (c) => (c.tie_word_embeddings = false) }),
      file: "model.safetensors",
      message: /missing 1 tensor\(s\) .*: "lm_head\.weight"/,
    },
  ];
  for (const c of cases) {
    const dir = await c.folder();
    try {
      await assert.rejects(
        loadModel(dir, backend, { ...quiet, ...c.options }),
        (e: unknown) => {
          assert.ok(e instanceof ModelLoadError, `${c.what}: ${e}`);
          assert.equal(e.path, `${dir}/${c.file}`, c.what);
          assert.match(e.message, c.message, c.what);
          return true;
        },
      );
      assert.equal(backend.liveAllocations(), start, `${c.what}: nothing left allocated`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }

  // A tokenizer with more ids than the embeddings have rows does not belong to the model.
  const dir = await storiesFolder();
  try {
    const big = await writeTokenizer(dir, 600);
    await assert.rejects(
      loadModel(dir, backend, { progress: false, tokenizer: big }),
      /tokenizer\.json: the tokenizer has ids up to 599 but the embeddings have 512 rows/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("model load: an untied lm_head is its own bf16 tensor", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const head = rng.normals(512 * 64, 0.02);
  const dir = await storiesFolder({
    config: (c) => (c.tie_word_embeddings = false),
    tensors: (t) => (t["lm_head.weight"] = { dtype: "F32", shape: [512, 64], data: head }),
  });
  try {
    using model = await loadModel(dir, backend, quiet);
    const w = model.weights;
    assert.ok(!w.tied && w.lmHead !== w.embeddings);
    assert.equal(w.lmHead.dtype, "bf16");
    assert.deepEqual(w.lmHead.toHost(), toBf16(head), `seed ${rng.seed}`);
    using tied = await loadModel(STORIES, backend, quiet);
    assert.equal(w.deviceBytes, tied.weights.deviceBytes + 512 * 64 * 2);
    assert.match(describeModel(model), /separate embeddings and lm_head/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("model load: a Hub id resolves through the Hugging Face cache (offline, from a filled cache)", async () => {
  using backend = await openBackend("cpu");
  const cacheDir = await Deno.makeTempDir();
  const commit = "0123456789abcdef0123456789abcdef01234567";
  try {
    const cache = new RepoCache(cacheDir, "tiny/stories260K");
    const snapshot = cache.snapshotDir(commit);
    const folder = await storiesFolder();
    await Deno.mkdir(`${cache.root}/snapshots`, { recursive: true });
    await Deno.rename(folder, snapshot);
    await writeTokenizer(snapshot, 512);
    await cache.writeRef("main", commit);
    using model = await loadModel("tiny/stories260K", backend, { progress: false, hub: { cacheDir, offline: true } });
    assert.equal(model.source.fromHub, true);
    assert.equal(model.source.path, snapshot);
    assert.equal(model.source.weightsPath, `${snapshot}/model.safetensors`);
    assert.match(describeModel(model), /^tiny\/stories260K \(Hub, /);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("default model: a given GGUF must be the exact SmolLM2 file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/fake.gguf`, "GGUF");
    await assert.rejects(
      smollm2Gguf({ ggufPath: `${dir}/fake.gguf` }),
      /fake\.gguf \(LORAC_SMOLLM2_GGUF\) is not SmolLM2-135M-Instruct\.Q4_1\.gguf: it has 4 bytes, not 98362432/,
    );
    await assert.rejects(smollm2Gguf({ ggufPath: `${dir}/none.gguf` }), /none\.gguf .*: it does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- The real default model, when a copy is on this machine ------------------------------------------------

/** A local SmolLM2 GGUF: $LORAC_SMOLLM2_GGUF, lorac's cache, or the oracle's copy; null when none is here. */
async function localSmolLM2(): Promise<string | null> {
  const candidates = [
    Deno.env.get("LORAC_SMOLLM2_GGUF"),
    `${loracCacheDir()}/models/${SMOLLM2_GGUF.fileName}`,
    decodeURIComponent(new URL(`../.oracle-venv/models/${SMOLLM2_GGUF.fileName}`, import.meta.url).pathname),
  ];
  for (const path of candidates) {
    if (path && (await Deno.stat(path).then((s) => s.isFile, () => false))) return path;
  }
  return null;
}

const smollm2 = await localSmolLM2();
if (smollm2 === null) {
  console.log(
    `model load: skipping the SmolLM2 GGUF test: no ${SMOLLM2_GGUF.fileName} on this machine ` +
      "(deno task oracle fetches it into .oracle-venv/models/; or set LORAC_SMOLLM2_GGUF)",
  );
}

Deno.test({
  name: "default model: without the Hub, the SmolLM2 GGUF found on this machine (when cached locally)",
  ignore: smollm2 === null,
  async fn() {
    const cacheDir = await Deno.makeTempDir();
    const notices: string[] = [];
    try {
      const source = await defaultModelSource({
        hub: { cacheDir, offline: true },
        ggufPath: smollm2!,
        log: (line) => notices.push(line),
      });
      assert.equal(source, smollm2);
      assert.match(
        notices.join("\n"),
        /HF_HUB_OFFLINE .*; using SmolLM2-135M-Instruct\.Q4_1\.gguf from the PyPI wheel/,
      );
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "model load: the real SmolLM2-135M-Instruct Q4_1 GGUF (when cached locally)",
  ignore: smollm2 === null,
  async fn() {
    const path = await smollm2Gguf({ ggufPath: smollm2!, log: () => {} }); // checks size and sha256
    using backend = await openBackend("cpu");
    const start = backend.liveAllocations();
    const rssBefore = Deno.memoryUsage().rss;
    let largest = 0;
    {
      using model = await loadModel(path, backend, {
        progress: false,
        onTensor: (e) => (largest = Math.max(largest, e.hostBytes)),
      });
      const c = model.config;
      assert.deepEqual(
        [c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize],
        [576, 30, 9, 3, 64, 1536, 49152],
      );
      assert.ok(model.weights.tied);
      assert.equal(model.stats.tensors, 1 + 30 * 9 + 1);
      assert.equal(model.stats.hostPeakBytes, largest);
      // 106.2M linear weights at 4.5 bits (NF4 + an f32 absmax per 64), 28.3M bf16 embeddings, f32 norms.
      const linears = 30 * (576 * 576 * 2 + 192 * 576 * 2 + 1536 * 576 * 3);
      assert.equal(model.stats.deviceBytes, linears / 2 + (linears / 64) * 4 + 49152 * 576 * 2 + (61 * 576) * 4);
      // Streaming: the process grew by far less than the model in f32 (538 MB) plus its device copy.
      const f32Bytes = (linears + 49152 * 576 + 61 * 576) * 4;
      assert.ok(
        model.stats.rssPeakBytes - rssBefore < f32Bytes,
        `RSS grew ${model.stats.rssPeakBytes - rssBefore} bytes while loading (${f32Bytes} bytes in f32)`,
      );
      const text = "Classify: quantum error correction with surface codes.";
      assert.equal(model.tokenizer.decode(model.tokenizer.encode(text), { skipSpecialTokens: true }), text);
      console.log(describeModel(model));
    }
    assert.equal(backend.liveAllocations(), start);
  },
});
