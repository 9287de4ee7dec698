/**
 * The valid inputs the fuzzer starts from, one set per parser: tiny files
 * written by lorac's own writers (safetensors, PEFT adapters) or by hand
 * (GGUF, CSV, configs), and real ones from ../shared/models (stories260K's
 * weights, config and tokenizer; a slice of the Llama 3 tokenizer.json). The
 * real files are optional: without them the synthetic seeds remain. Seeds are
 * built the same way on every run, so a case seed replays.
 *
 * @module
 */

import { writeSafetensors } from "../../lib/formats/safetensors.ts";
import { type PeftAdapter, writePeftAdapter } from "../../lib/formats/peft_adapter.ts";
import { tokenizerSpecFromGguf } from "../../lib/tokenizer/from_gguf.ts";
import { BYTE_TO_CHAR } from "../../lib/tokenizer/bytelevel.ts";
import { Rng } from "../reference/random.ts";
import { storiesGgufMetadata } from "../reference/stories_tokenizer.ts";
import { type GgufKvSpec, type GgufSpec, type GgufTensorSpec, VT } from "./gguf_builder.ts";

const SHARED = new URL("../../../shared/models/", import.meta.url);

/** The bytes of a file under ../shared/models, or null when it is not there. */
async function sharedFile(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(new URL(path, SHARED));
  } catch {
    return null;
  }
}

/** Deterministic filler bytes for tensor data. */
function filler(seed: number, n: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(0, 255));
}

/** Writes files with `write` into a temporary folder and returns what `read` takes from it. */
async function viaTempDir<T>(write: (dir: string) => Promise<void>, read: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "lorac-fuzz-seeds-" });
  try {
    await write(dir);
    return await read(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- safetensors ---------------------------------------------------------------------------------------------

/**
 * Safetensors files: every dtype, scalars, empty tensors, metadata, odd layouts, stories260K's real weights.
 *
 * @example
 * ```ts
 * import { safetensorsSeeds } from "./seeds.ts";
 * (await safetensorsSeeds()).length; // 4, 6 with ../shared/models
 * ```
 */
export async function safetensorsSeeds(): Promise<Uint8Array[]> {
  const seeds: Uint8Array[] = await viaTempDir(async (dir) => {
    await writeSafetensors(`${dir}/a`, { w: { dtype: "F32", shape: [2, 3], data: new Float32Array(6).fill(0.5) } }, {
      format: "pt",
    });
    await writeSafetensors(`${dir}/b`, {
      "model.h.0.w": { dtype: "F16", shape: [4], data: filler(1, 8) },
      "model.h.0.b": { dtype: "BF16", shape: [2, 2], data: filler(2, 8) },
      ids: { dtype: "I64", shape: [3], data: filler(3, 24) },
      mask: { dtype: "BOOL", shape: [5], data: filler(4, 5) },
      bytes: { dtype: "U8", shape: [1, 1, 3], data: filler(5, 3) },
      scale: { dtype: "F64", shape: [], data: filler(6, 8) },
      empty: { dtype: "F32", shape: [0, 4], data: new Uint8Array(0) },
      fp8: { dtype: "F8_E4M3", shape: [2], data: filler(7, 2) },
      fp4: { dtype: "F4", shape: [4], data: filler(8, 2) },
    });
  }, async (dir) => [await Deno.readFile(`${dir}/a`), await Deno.readFile(`${dir}/b`)]);
  // By hand: offsets out of name order, no padding, an empty header.
  const hand = (header: string, data: number) => {
    const json = new TextEncoder().encode(header);
    const out = new Uint8Array(8 + json.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(filler(9, data), 8 + json.length);
    return out;
  };
  seeds.push(
    hand(
      '{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"I32","shape":[2],"data_offsets":[4,12]},' +
        '"__metadata__":{"format":"pt","note":"x"}}',
      12,
    ),
    hand("{}", 0),
  );
  for (const path of ["stories260K/hf/model.safetensors", "stories260K/hf/model.bf16.safetensors"]) {
    const real = await sharedFile(path);
    if (real) seeds.push(real);
  }
  return seeds;
}

// ---- GGUF ----------------------------------------------------------------------------------------------------

const str = (key: string, value: string): GgufKvSpec => ({ key, type: VT.STRING, value });
const u32 = (key: string, value: number): GgufKvSpec => ({ key, type: VT.U32, value });
const f32 = (key: string, value: number): GgufKvSpec => ({ key, type: VT.F32, value });
const arr = (key: string, elem: number, items: readonly unknown[]): GgufKvSpec => ({
  key,
  type: VT.ARRAY,
  value: { elem, items },
});

/** Bytes of `n` elements of ggml type `type` (block sizes as in gguf_quants.ts). */
function tensorBytes(seed: number, type: number, n: number): Uint8Array {
  const layout: Record<number, [number, number]> = {
    0: [1, 4],
    1: [1, 2],
    2: [32, 18],
    3: [32, 20],
    6: [32, 22],
    8: [32, 34],
    12: [256, 144],
    13: [256, 176],
    14: [256, 210],
    16: [256, 66],
    30: [1, 2],
  };
  const [block, size] = layout[type];
  return filler(seed, (n / block) * size);
}

/** Llama metadata for a model of the given sizes. */
function llamaKvs(s: { hidden: number; layers: number; heads: number; kvHeads: number; ffn: number }): GgufKvSpec[] {
  return [
    str("general.architecture", "llama"),
    str("general.name", "fuzz"),
    u32("llama.block_count", s.layers),
    u32("llama.context_length", 256),
    u32("llama.embedding_length", s.hidden),
    u32("llama.feed_forward_length", s.ffn),
    u32("llama.attention.head_count", s.heads),
    u32("llama.attention.head_count_kv", s.kvHeads),
    f32("llama.rope.freq_base", 10000),
    f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    u32("llama.rope.dimension_count", s.hidden / s.heads),
    u32("general.file_type", 7),
  ];
}

/** One layer's tensors (and the global ones) of a tiny Llama, in the given ggml types. */
function llamaTensors(
  seed: number,
  s: { hidden: number; heads: number; kvHeads: number; ffn: number; vocab: number },
  types: { embd: number; q: number; k: number; v: number; o: number; gate: number; up: number; down: number },
): GgufTensorSpec[] {
  const kv = (s.hidden / s.heads) * s.kvHeads;
  const t = (name: string, dims: number[], type: number, i: number): GgufTensorSpec => ({
    name,
    dims,
    type,
    data: tensorBytes(seed + i, type, dims.reduce((a, b) => a * b, 1)),
  });
  return [
    t("token_embd.weight", [s.hidden, s.vocab], types.embd, 0),
    t("blk.0.attn_norm.weight", [s.hidden], 0, 1),
    t("blk.0.attn_q.weight", [s.hidden, s.hidden], types.q, 2),
    t("blk.0.attn_k.weight", [s.hidden, kv], types.k, 3),
    t("blk.0.attn_v.weight", [s.hidden, kv], types.v, 4),
    t("blk.0.attn_output.weight", [s.hidden, s.hidden], types.o, 5),
    t("blk.0.ffn_norm.weight", [s.hidden], 0, 6),
    t("blk.0.ffn_gate.weight", [s.hidden, s.ffn], types.gate, 7),
    t("blk.0.ffn_up.weight", [s.hidden, s.ffn], types.up, 8),
    t("blk.0.ffn_down.weight", [s.ffn, s.hidden], types.down, 9),
    t("output_norm.weight", [s.hidden], 0, 10),
  ];
}

/** stories260K's SentencePiece vocabulary from llama2.c's tok512.bin: tokens, scores, token types; null without it. */
async function storiesVocab(): Promise<{ tokens: string[]; scores: number[]; types: number[] } | null> {
  const meta = await storiesGgufMetadata().catch(() => null);
  if (!meta) return null;
  return {
    tokens: meta["tokenizer.ggml.tokens"] as string[],
    scores: meta["tokenizer.ggml.scores"] as number[],
    types: meta["tokenizer.ggml.token_type"] as number[],
  };
}

/** A small byte-level vocabulary: the 256 byte symbols, an end-of-text token, and merges. */
function byteLevelVocab(): { tokens: string[]; types: number[]; merges: string[] } {
  const bytes = Array.from({ length: 256 }, (_, b) => String.fromCharCode(BYTE_TO_CHAR[b]));
  const merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "Ġ 1"];
  const tokens = [...bytes, "<|endoftext|>", "<|im_start|>", ...merges.map((m) => m.replace(" ", ""))];
  return { tokens, types: tokens.map((t) => (t.startsWith("<|") ? 3 : 1)), merges };
}

/**
 * GGUF files: tiny Llamas with a gpt2 and a SentencePiece tokenizer, every value and ggml type, stories260K.
 *
 * @example
 * ```ts
 * import { ggufSeeds } from "./seeds.ts";
 * (await ggufSeeds())[0].kvs.length > 0; // true
 * ```
 */
export async function ggufSeeds(): Promise<GgufSpec[]> {
  const seeds: GgufSpec[] = [];
  const small = { hidden: 32, layers: 1, heads: 4, kvHeads: 2, ffn: 64 };
  const bl = byteLevelVocab();
  seeds.push({
    version: 3,
    alignment: 32,
    kvs: [
      ...llamaKvs(small),
      str("tokenizer.ggml.model", "gpt2"),
      str("tokenizer.ggml.pre", "smollm"),
      arr("tokenizer.ggml.tokens", VT.STRING, bl.tokens),
      arr("tokenizer.ggml.token_type", VT.I32, bl.types),
      arr("tokenizer.ggml.merges", VT.STRING, bl.merges),
      u32("tokenizer.ggml.bos_token_id", 256),
      u32("tokenizer.ggml.eos_token_id", 256),
      { key: "tokenizer.ggml.add_bos_token", type: VT.BOOL, value: true },
    ],
    tensors: llamaTensors(10, { ...small, vocab: bl.tokens.length }, {
      embd: 8,
      q: 2,
      k: 3,
      v: 1,
      o: 8,
      gate: 30,
      up: 1,
      down: 0,
    }),
  });
  const sp = await storiesVocab() ?? {
    tokens: ["<unk>", "<s>", "</s>", "▁", "h", "i", "▁h", "▁hi", "<0x41>"],
    scores: [0, 0, 0, -1, -2, -3, -4, -5, 0],
    types: [2, 3, 3, 1, 1, 1, 1, 1, 6],
  };
  seeds.push({
    version: 3,
    alignment: 32,
    kvs: [
      ...llamaKvs(small),
      str("tokenizer.ggml.model", "llama"),
      arr("tokenizer.ggml.tokens", VT.STRING, sp.tokens),
      arr("tokenizer.ggml.scores", VT.F32, sp.scores),
      arr("tokenizer.ggml.token_type", VT.I32, sp.types),
      u32("tokenizer.ggml.bos_token_id", 1),
      u32("tokenizer.ggml.eos_token_id", 2),
      u32("tokenizer.ggml.unknown_token_id", 0),
      { key: "tokenizer.ggml.add_space_prefix", type: VT.BOOL, value: true },
    ],
    tensors: [
      ...llamaTensors(30, { ...small, vocab: sp.tokens.length }, {
        embd: 1,
        q: 0,
        k: 8,
        v: 2,
        o: 3,
        gate: 1,
        up: 0,
        down: 8,
      }),
      { name: "rope_freqs.weight", dims: [4], type: 0, data: new Uint8Array(new Float32Array([1, 1, 2, 8]).buffer) },
    ],
  });
  // Every metadata value type, nested arrays, every dequantizable ggml type and two that are not; version 2.
  const scalars: GgufKvSpec[] = [
    { key: "t.u8", type: VT.U8, value: 200 },
    { key: "t.i8", type: VT.I8, value: -5 },
    { key: "t.u16", type: VT.U16, value: 60000 },
    { key: "t.i16", type: VT.I16, value: -300 },
    { key: "t.u32", type: VT.U32, value: 4e9 },
    { key: "t.i32", type: VT.I32, value: -2e9 },
    { key: "t.f32", type: VT.F32, value: 0.25 },
    { key: "t.bool", type: VT.BOOL, value: true },
    { key: "t.u64", type: VT.U64, value: 2n ** 60n },
    { key: "t.i64", type: VT.I64, value: -(2n ** 62n) },
    { key: "t.f64", type: VT.F64, value: -1.5 },
  ];
  seeds.push({
    version: 2,
    alignment: 64,
    kvs: [
      str("general.architecture", "fuzztest"),
      u32("general.alignment", 64),
      ...scalars,
      ...[VT.U8, VT.I16, VT.U32, VT.F32, VT.U64, VT.I64, VT.F64, VT.BOOL].map((t) => arr(`a.${t}`, t, [1, 0, 1])),
      arr("a.strings", VT.STRING, ["x", "", "ünï"]),
      arr("a.nested", VT.ARRAY, [{ elem: VT.STRING, items: ["a"] }, { elem: VT.U8, items: [1, 2] }]),
    ],
    tensors: [
      [12, [256]],
      [13, [256, 2]],
      [14, [512]],
      [2, [64]],
      [3, [32, 2]],
      [8, [32]],
      [30, [3, 2]],
      [1, [5]],
      [0, [1, 1, 1, 2]],
      [6, [32]],
      [16, [256]],
    ].map(([type, dims], i) => ({
      name: `t${i}.weight`,
      type: type as number,
      dims: dims as number[],
      data: tensorBytes(50 + i, type as number, (dims as number[]).reduce((a, b) => a * b, 1)),
    })),
  });
  // stories260K's real weights (not permuted: the values do not matter here) and tokenizer.
  const st = await sharedFile("stories260K/hf/model.safetensors");
  const storiesSp = await storiesVocab();
  if (st && storiesSp) {
    const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + n))) as Record<
      string,
      { shape: number[]; data_offsets: [number, number] }
    >;
    const gguf = (hf: string) =>
      hf.replace(/^model\.embed_tokens/, "token_embd").replace(/^model\.norm/, "output_norm")
        .replace(/^model\.layers\.(\d+)\./, "blk.$1.").replace("input_layernorm", "attn_norm")
        .replace("self_attn.q_proj", "attn_q").replace("self_attn.k_proj", "attn_k")
        .replace("self_attn.v_proj", "attn_v").replace("self_attn.o_proj", "attn_output")
        .replace("post_attention_layernorm", "ffn_norm").replace("mlp.gate_proj", "ffn_gate")
        .replace("mlp.up_proj", "ffn_up").replace("mlp.down_proj", "ffn_down");
    const tensors = Object.entries(header).filter(([k]) => k !== "__metadata__").map(([name, t]) => ({
      name: gguf(name),
      type: 0,
      dims: [...t.shape].reverse(),
      data: st.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]),
    }));
    seeds.push({
      version: 3,
      alignment: 32,
      kvs: [
        ...llamaKvs({ hidden: 64, layers: 5, heads: 8, kvHeads: 4, ffn: 172 }),
        str("tokenizer.ggml.model", "llama"),
        arr("tokenizer.ggml.tokens", VT.STRING, storiesSp.tokens),
        arr("tokenizer.ggml.scores", VT.F32, storiesSp.scores),
        arr("tokenizer.ggml.token_type", VT.I32, storiesSp.types),
        u32("tokenizer.ggml.bos_token_id", 1),
        u32("tokenizer.ggml.eos_token_id", 2),
      ],
      tensors,
    });
  }
  return seeds;
}

// ---- tokenizer.json ------------------------------------------------------------------------------------------

/** A tokenizer.json text and, sometimes, the tokenizer_config.json beside it. */
export interface TokenizerSeed {
  /** tokenizer.json. */
  json: string;
  /** tokenizer_config.json. */
  config?: string;
}

/** A slice of the real Llama 3 tokenizer.json: its components, the byte symbols and its first merges, renumbered. */
async function llama3Slice(): Promise<TokenizerSeed | null> {
  const bytes = await sharedFile("llama3-tokenizer/tokenizer.json");
  const configBytes = await sharedFile("llama3-tokenizer/tokenizer_config.json");
  if (!bytes || !configBytes) return null;
  const full = JSON.parse(new TextDecoder().decode(bytes));
  const vocab: Record<string, number> = {};
  let next = 0;
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(BYTE_TO_CHAR[b])] = next++;
  const merges: (string | [string, string])[] = [];
  for (const m of full.model.merges as (string | [string, string])[]) {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    if (!(a in vocab) || !(b in vocab)) continue;
    merges.push(m);
    vocab[a + b] ??= next++;
    if (merges.length >= 300) break;
  }
  const renumber = new Map<number, number>();
  const added = (full.added_tokens as { id: number }[]).slice(0, 12).map((t) => {
    renumber.set(t.id, next);
    return { ...t, id: next++ };
  });
  const post = JSON.parse(
    JSON.stringify(full.post_processor),
    (key, v) => key === "ids" && Array.isArray(v) ? v.map((id: number) => renumber.get(id) ?? id) : v,
  );
  const json = JSON.stringify({
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: full.pre_tokenizer,
    post_processor: post,
    decoder: full.decoder,
    model: { ...full.model, vocab, merges },
  });
  const config = JSON.parse(new TextDecoder().decode(configBytes));
  delete config.added_tokens_decoder;
  config.eos_token = "<|end_of_text|>";
  return { json, config: JSON.stringify(config, null, 2) };
}

/**
 * tokenizer.json files: byte-level BPE, Llama 3's, SentencePiece (stories260K), Metaspace, a minimal one.
 *
 * @example
 * ```ts
 * import { tokenizerSeeds } from "./seeds.ts";
 * (await tokenizerSeeds())[1].json; // the minimal one
 * ```
 */
export async function tokenizerSeeds(): Promise<TokenizerSeed[]> {
  const bl = byteLevelVocab();
  const vocab = Object.fromEntries(bl.tokens.map((t, i) => [t, i]));
  const seeds: TokenizerSeed[] = [
    {
      json: JSON.stringify({
        added_tokens: [
          { id: 256, content: "<|endoftext|>", special: true, normalized: false },
          { id: 257, content: "<|im_start|>", special: true, lstrip: true, rstrip: true, single_word: false },
          { id: 300, content: " user", special: false, normalized: true },
        ],
        normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }] },
        pre_tokenizer: {
          type: "Sequence",
          pretokenizers: [
            { type: "Digits", individual_digits: true },
            { type: "ByteLevel", add_prefix_space: false, use_regex: true, trim_offsets: true },
          ],
        },
        post_processor: { type: "ByteLevel", trim_offsets: false },
        decoder: { type: "ByteLevel" },
        model: { type: "BPE", dropout: null, unk_token: null, vocab, merges: bl.merges.map((m) => m.split(" ")) },
      }),
      config: JSON.stringify({ bos_token: "<|im_start|>", eos_token: "<|endoftext|>", pad_token: null }),
    },
    { json: '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}' },
    {
      json: JSON.stringify({
        added_tokens: [{ id: 0, content: "<unk>", special: true }, { id: 1, content: "<s>", special: true }],
        normalizer: { type: "Sequence", normalizers: [{ type: "Lowercase" }, { type: "Strip", strip_left: true }] },
        pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true },
        post_processor: {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
        },
        decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "first" },
        model: {
          type: "BPE",
          unk_token: "<unk>",
          fuse_unk: true,
          vocab: { "<unk>": 0, "<s>": 1, "▁": 2, h: 3, i: 4, "▁h": 5, "▁hi": 6, "1": 7 },
          merges: ["▁ h", "▁h i"],
        },
      }),
      config: JSON.stringify({ bos_token: { content: "<s>" }, add_bos_token: true, add_eos_token: false }),
    },
  ];
  const sp = await storiesVocab();
  if (sp) {
    const spec = tokenizerSpecFromGguf({
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": sp.tokens,
      "tokenizer.ggml.scores": sp.scores,
      "tokenizer.ggml.token_type": sp.types,
      "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2,
    });
    seeds.push({
      json: JSON.stringify(spec.json),
      config: JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true, add_eos_token: false }),
    });
  }
  const llama3 = await llama3Slice();
  if (llama3) seeds.push(llama3);
  return seeds;
}

// ---- CSV -----------------------------------------------------------------------------------------------------

/**
 * CSV files as the seed's data builders write them, with quoting, CRLF, a BOM, short rows and multi-label gold.
 *
 * @example
 * ```ts
 * import { csvSeeds } from "./seeds.ts";
 * csvSeeds()[0].split("\n")[0]; // "title,abstract,label_name"
 * ```
 */
export function csvSeeds(): string[] {
  return [
    "title,abstract,label_name\n" +
    '"Attention, again",We propose X.,cs.CL\n' +
    'Deep nets,"A ""quoted"" word\nand a second line",cs.LG\n' +
    "Quarks,Decays of the top.,hep-ph\n",
    "\ufefftitle,abstract,label_name\r\n" +
    "Spam subject,Click here 💰 now,spam\r\n" +
    'Re: lunch,"Sure, at 12.\r\nBye",ham\r\n' +
    ",,ham\r\n" +
    "Only a title\r\n",
    "title,abstract,label_name\n" +
    'Qubits,Entanglement.,"quant-ph, cs.LG"\n' +
    "\n" +
    "Vision,Pixels.  ,cs.CV\n" +
    "Last,no newline at the end,cs.CV",
    "text,label\n" + "hello,ham\n" + "win money,spam\n",
  ];
}

// ---- adapters ------------------------------------------------------------------------------------------------

/** An adapter_config.json text and its adapter_model.safetensors bytes. */
export interface AdapterSeed {
  /** adapter_config.json. */
  config: string;
  /** adapter_model.safetensors. */
  weights: Uint8Array;
}

function loraModules(rng: Rng, names: string[], r: number): PeftAdapter["modules"] {
  return names.map((module) => ({
    module,
    r,
    inFeatures: 8,
    outFeatures: 6,
    a: rng.normals(r * 8),
    b: rng.normals(6 * r),
  }));
}

/**
 * PEFT adapters written by lorac's writer: plain, with rank/alpha patterns and rsLoRA, with a regex target.
 *
 * @example
 * ```ts
 * import { adapterSeeds } from "./seeds.ts";
 * (await adapterSeeds()).length; // 3
 * ```
 */
export async function adapterSeeds(): Promise<AdapterSeed[]> {
  const rng = new Rng(11);
  const adapters: PeftAdapter[] = [
    {
      config: {
        r: 2,
        loraAlpha: 4,
        loraDropout: 0.05,
        targetModules: ["q_proj", "v_proj"],
        useRslora: false,
        baseModelNameOrPath: "stories260K",
      },
      modules: loraModules(
        rng,
        [0, 1].flatMap((l) => [`q_proj`, `v_proj`].map((p) => `model.layers.${l}.self_attn.${p}`)),
        2,
      ),
    },
    {
      config: {
        r: 2,
        loraAlpha: 8,
        loraDropout: 0,
        targetModules: ".*\\.(q|v)_proj",
        useRslora: true,
        baseModelNameOrPath: null,
        rankPattern: { q_proj: 4 },
        alphaPattern: { "layers\\.0\\.self_attn\\.v_proj": 2 },
      },
      modules: [
        ...loraModules(rng, ["model.layers.0.self_attn.q_proj"], 4),
        ...loraModules(rng, ["model.layers.0.self_attn.v_proj"], 2),
      ],
    },
  ];
  const seeds: AdapterSeed[] = [];
  for (const adapter of adapters) {
    seeds.push(
      await viaTempDir((dir) => writePeftAdapter(dir, adapter), async (dir) => ({
        config: await Deno.readTextFile(`${dir}/adapter_config.json`),
        weights: await Deno.readFile(`${dir}/adapter_model.safetensors`),
      })),
    );
  }
  // BF16 weights, as PEFT saves a bf16 model's adapter.
  const bf16 = await viaTempDir(
    (dir) =>
      writeSafetensors(`${dir}/w`, {
        "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight": {
          dtype: "BF16",
          shape: [2, 8],
          data: filler(20, 32),
        },
        "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight": {
          dtype: "BF16",
          shape: [6, 2],
          data: filler(21, 24),
        },
      }),
    (dir) => Deno.readFile(`${dir}/w`),
  );
  seeds.push({ config: seeds[0].config.replace('"v_proj"', '"down_proj"'), weights: bf16 });
  return seeds;
}

// ---- config.json ---------------------------------------------------------------------------------------------

/**
 * config.json files: stories260K's real one, Llama 3.2 (llama3 RoPE), TinyLlama, SmolLM2, Mistral, transformers 5.
 *
 * @example
 * ```ts
 * import { configSeeds } from "./seeds.ts";
 * JSON.parse((await configSeeds())[0]).num_hidden_layers; // 16 (Llama 3.2 1B)
 * ```
 */
export async function configSeeds(): Promise<string[]> {
  const stories = await sharedFile("stories260K/hf/config.json");
  const llama32 = {
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
    rope_theta: 500000.0,
    rope_scaling: {
      factor: 32.0,
      high_freq_factor: 4.0,
      low_freq_factor: 1.0,
      original_max_position_embeddings: 8192,
      rope_type: "llama3",
    },
    tie_word_embeddings: true,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
    torch_dtype: "bfloat16",
  };
  const tinyllama = {
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
    hidden_act: "silu",
    bos_token_id: 1,
    eos_token_id: 2,
  };
  const smollm2 = {
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
    rope_scaling: { type: "linear", factor: 2 },
    tie_word_embeddings: true,
    pad_token_id: 2,
    attention_bias: false,
    mlp_bias: false,
  };
  const mistral = {
    architectures: ["MistralForCausalLM"],
    model_type: "mistral",
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    vocab_size: 32768,
    max_position_embeddings: 32768,
    sliding_window: null,
    rope_theta: 1000000.0,
  };
  const transformers5 = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 512,
    rope_parameters: { rope_type: "default", rope_theta: 10000.0 },
    quantization_config: null,
  };
  const seeds = [llama32, tinyllama, smollm2, mistral, transformers5].map((c, i) =>
    JSON.stringify(c, null, i % 2 ? 2 : 0)
  );
  if (stories) seeds.push(new TextDecoder().decode(stories));
  return seeds;
}
