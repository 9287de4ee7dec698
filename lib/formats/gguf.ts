/**
 * GGUF files (llama.cpp's model format, versions 2 and 3): the header, the
 * typed metadata key/values (arrays included), the tensor infos and the
 * aligned data section, read lazily tensor by tensor; and a Llama view of
 * them — HF tensor names, float32 weights with llama.cpp's Q/K row
 * permutation undone, and a LlamaConfig from the `llama.*` keys.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 kv
 * count; kv pairs (string key, u32 type, value); tensor infos (string name,
 * u32 n_dims, u64 dims[n_dims] fastest first, u32 ggml type, u64 offset into
 * the data section); padding to `general.alignment` (default 32); data.
 *
 * @module
 */

import { DEQUANTIZABLE, dequantize, GGML_TYPES, ggmlByteSize, type GgmlTypeInfo } from "./gguf_quants.ts";
import { type LlamaConfig, LlamaConfigError, MAX_CONFIG_SIZE, MAX_HEAD_DIM, type RopeScaling } from "./llama_config.ts";
import { type ByteSource, bytesSource, openFileSource } from "../util/read_at.ts";
import { describe, oneLine } from "../util/describe.ts";

/** A metadata array: numeric arrays as typed arrays, others as plain arrays. */
export type GgufArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GgufArray[];

/** A metadata value. 64-bit integers are numbers when they fit exactly, else bigint. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

/** One tensor of a GGUF file. */
export interface GgufTensorInfo {
  /** llama.cpp's name, e.g. "blk.0.attn_q.weight". */
  readonly name: string;
  /** The ggml type. */
  readonly type: GgmlTypeInfo;
  /** ggml dimensions, fastest-varying first (ne0 = row length). */
  readonly dims: readonly number[];
  /** Dimensions outermost first, as PyTorch/HF write them (dims reversed). */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly numel: number;
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  /** Bytes of data. */
  readonly byteLength: number;
}

/** A GGUF file that cannot be read as one; the message names the file and the problem. */
export class GgufError extends Error {
  /** The file concerned. */
  readonly path: string;

  /** Creates the error; the message is `<path>: <problem>`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.name = "GgufError";
    this.path = path;
  }
}

/**
 * Metadata value type codes (gguf_type), as the GGUF spec numbers them.
 *
 * @example
 * ```ts
 * import { GGUF_VALUE_TYPE } from "./gguf.ts";
 * GGUF_VALUE_TYPE.STRING; // 8
 * ```
 */
export const GGUF_VALUE_TYPE = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;
const VT = GGUF_VALUE_TYPE;

/** Element constructors and sizes of the numeric value types. */
const NUMERIC: Record<number, { size: number; array: new (b: ArrayBuffer) => GgufArray }> = {
  [VT.U8]: { size: 1, array: Uint8Array },
  [VT.I8]: { size: 1, array: Int8Array },
  [VT.U16]: { size: 2, array: Uint16Array },
  [VT.I16]: { size: 2, array: Int16Array },
  [VT.U32]: { size: 4, array: Uint32Array },
  [VT.I32]: { size: 4, array: Int32Array },
  [VT.F32]: { size: 4, array: Float32Array },
  [VT.U64]: { size: 8, array: BigUint64Array },
  [VT.I64]: { size: 8, array: BigInt64Array },
  [VT.F64]: { size: 8, array: Float64Array },
};

const MAX_DIMS = 4;
const DEFAULT_ALIGNMENT = 32;
// Real files nest arrays one level at most; a deeper nest is corruption (and would exhaust the stack).
const MAX_ARRAY_DEPTH = 8;
// Alignments are u32 powers of two in llama.cpp; larger ones would put the data past any real file.
const MAX_ALIGNMENT = 2 ** 30;

/** Thrown by the cursor when the header continues past the bytes read so far. */
class NeedMore extends Error {}

class Cursor {
  pos = 0;
  readonly view: DataView;
  readonly #decoder = new TextDecoder();

  constructor(readonly bytes: Uint8Array, readonly fileSize: number, readonly fail: (problem: string) => never) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(n: number, what: string): void {
    if (this.pos + n <= this.bytes.length) return;
    if (this.pos + n > this.fileSize) {
      this.fail(`${what} at byte ${this.pos} runs past the end of the file: truncated? re-download it`);
    }
    throw new NeedMore();
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A u64 that must fit a JS number (counts, lengths, offsets). */
  count(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.fail(`${what} ${v} is impossibly large: corrupted file; re-download or re-convert it`);
    }
    return Number(v);
  }

  string(what: string): string {
    const n = this.count(`${what} length`);
    this.need(n, what);
    const s = this.#decoder.decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  scalar(type: number, what: string): GgufValue {
    const v = this.view;
    const at = this.pos;
    switch (type) {
      case VT.BOOL:
        this.need(1, what);
        this.pos += 1;
        return v.getUint8(at) !== 0;
      case VT.STRING:
        return this.string(what);
      case VT.U64:
      case VT.I64: {
        this.need(8, what);
        this.pos += 8;
        const b = type === VT.U64 ? v.getBigUint64(at, true) : v.getBigInt64(at, true);
        const safe = b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER);
        return safe ? Number(b) : b;
      }
    }
    const numeric = NUMERIC[type];
    if (!numeric) return this.fail(`${what} has unknown value type ${type}`);
    this.need(numeric.size, what);
    this.pos += numeric.size;
    switch (type) {
      case VT.U8:
        return v.getUint8(at);
      case VT.I8:
        return v.getInt8(at);
      case VT.U16:
        return v.getUint16(at, true);
      case VT.I16:
        return v.getInt16(at, true);
      case VT.U32:
        return v.getUint32(at, true);
      case VT.I32:
        return v.getInt32(at, true);
      case VT.F32:
        return v.getFloat32(at, true);
      default:
        return v.getFloat64(at, true);
    }
  }

  value(type: number, what: string, depth = 0): GgufValue {
    if (type !== VT.ARRAY) return this.scalar(type, what);
    if (depth >= MAX_ARRAY_DEPTH) this.fail(`${what} nests arrays more than ${MAX_ARRAY_DEPTH} deep: corrupted file`);
    const elem = this.u32(`${what} element type`);
    const n = this.count(`${what} length`);
    const numeric = NUMERIC[elem];
    if (numeric) {
      this.need(n * numeric.size, what);
      // slice: a fresh, aligned buffer for the typed array.
      const copy = this.bytes.slice(this.pos, this.pos + n * numeric.size);
      this.pos += n * numeric.size;
      return new numeric.array(copy.buffer);
    }
    if (elem !== VT.BOOL && elem !== VT.STRING && elem !== VT.ARRAY) {
      this.fail(`${what} has unknown element type ${elem}`);
    }
    // Each element takes at least one byte: a larger count is corruption, not a big array.
    if (n > this.fileSize - this.pos) this.fail(`${what} claims ${n} elements, more than the file holds`);
    const out: GgufValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(elem, what, depth + 1));
    return out as GgufArray;
  }
}

/** A parsed GGUF header. */
export interface GgufHeader {
  /** Format version (2 or 3). */
  readonly version: number;
  /** Metadata key/values, in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos by name, in file order. */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  /** Data-section alignment in bytes. */
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
}

/**
 * Parses a GGUF header from the first bytes of a file of `fileSize` bytes.
 * Returns null when the header continues past `bytes` (read more and retry).
 *
 * @example
 * ```ts ignore
 * import { parseGgufHeader } from "./gguf.ts";
 * const bytes = await Deno.readFile("model.gguf");
 * const header = parseGgufHeader("model.gguf", bytes, bytes.length);
 * header?.metadata.get("general.architecture"); // "llama"
 * ```
 */
export function parseGgufHeader(path: string, bytes: Uint8Array, fileSize: number): GgufHeader | null {
  const fail = (problem: string): never => {
    throw new GgufError(path, problem);
  };
  const c = new Cursor(bytes, fileSize, fail);
  try {
    c.need(4, "the magic");
    const magic = new TextDecoder().decode(bytes.subarray(0, 4));
    if (magic !== "GGUF") {
      fail(`starts with ${describe(magic)}, not "GGUF": not a GGUF file; download or convert the model again`);
    }
    c.pos = 4;
    const version = c.u32("the version");
    if (version === 1) {
      fail("GGUF version 1 (32-bit counts) is obsolete: re-convert the model with a current llama.cpp");
    }
    if (version > 0xffff && [2, 3].includes(((version >>> 24) | ((version >>> 8) & 0xff00)) >>> 0)) {
      fail("this is a big-endian GGUF: lorac reads the standard little-endian files");
    }
    if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported (versions 2 and 3 are)`);
    const nTensors = c.count("the tensor count");
    const nKv = c.count("the metadata count");

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.string(`metadata key #${i}`);
      if (metadata.has(key)) fail(`metadata key ${describe(key)} appears twice`);
      const type = c.u32(`metadata ${describe(key)} type`);
      metadata.set(key, c.value(type, `metadata ${describe(key)}`));
    }
    let alignment = DEFAULT_ALIGNMENT;
    if (metadata.has("general.alignment")) {
      const a = metadata.get("general.alignment");
      if (typeof a !== "number" || !Number.isInteger(a) || a < 1 || a > MAX_ALIGNMENT || (a & (a - 1)) !== 0) {
        fail(`general.alignment must be a positive power of two, got ${describe(a)} (at most 2^30 allowed)`);
      }
      alignment = a as number;
    }

    const raw: { name: string; dims: number[]; type: GgmlTypeInfo; rel: number }[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.string(`tensor #${i} name`);
      const tensor = `tensor ${describe(name)}`;
      const nDims = c.u32(`${tensor} n_dims`);
      if (nDims < 1 || nDims > MAX_DIMS) fail(`${tensor} has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(c.count(`${tensor} dimension ${d}`));
      const typeId = c.u32(`${tensor} type`);
      const type = GGML_TYPES.get(typeId);
      if (!type) return fail(`${tensor} has unknown ggml type ${typeId}: re-convert the model with llama.cpp`);
      const rel = c.count(`${tensor} offset`);
      raw.push({ name, dims, type, rel });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const { name, dims, type, rel } of raw) {
      const tensor = `tensor ${describe(name)}`;
      if (tensors.has(name)) fail(`${tensor} appears twice`);
      const numel = dims.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(numel)) fail(`${tensor} dims [${dims}] are impossibly large: corrupted file`);
      if (dims[0] % type.blockSize !== 0) {
        fail(`${tensor}: row length ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
      }
      if (rel % alignment !== 0) fail(`${tensor} offset ${rel} is not a multiple of the alignment ${alignment}`);
      const byteLength = ggmlByteSize(type, numel);
      if (dataOffset + rel + byteLength > fileSize) {
        fail(
          `${tensor} (bytes ${rel}..${rel + byteLength} of the data) runs past the end of the file: ` +
            "truncated? re-download it",
        );
      }
      tensors.set(name, {
        name,
        type,
        dims,
        shape: [...dims].reverse(),
        numel,
        offset: dataOffset + rel,
        byteLength,
      });
    }
    const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (sorted[i].offset < prev.offset + prev.byteLength) {
        fail(`tensors ${describe(prev.name)} and ${describe(sorted[i].name)} overlap: corrupted file`);
      }
    }
    return { version, metadata, tensors, alignment, dataOffset };
  } catch (e) {
    if (e instanceof NeedMore) return null;
    throw e;
  }
}

/**
 * A GGUF file, open for lazy reads by tensor name.
 *
 * @example
 * ```ts ignore
 * import { GgufFile } from "./gguf.ts";
 * using f = await GgufFile.open("SmolLM2-135M-Instruct.Q4_1.gguf");
 * f.metadata.get("llama.block_count"); // 30
 * const norm = await f.readFloat32("output_norm.weight");
 * ```
 */
export class GgufFile implements Disposable {
  /** The file's path. */
  readonly path: string;
  /** Format version (2 or 3). */
  readonly version: number;
  /** Metadata key/values in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos by name in file order. */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  /** Data-section alignment. */
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  #source: ByteSource | null;

  private constructor(path: string, source: ByteSource, h: GgufHeader) {
    this.path = path;
    this.#source = source;
    this.version = h.version;
    this.metadata = h.metadata;
    this.tensors = h.tensors;
    this.alignment = h.alignment;
    this.dataOffset = h.dataOffset;
  }

  /** Opens `path` and parses its header (reading only as much of the file as the header takes). */
  static async open(path: string): Promise<GgufFile> {
    let source: ByteSource;
    try {
      source = await openFileSource(path);
    } catch (e) {
      throw new GgufError(path, `cannot open: ${oneLine((e as Error).message)}`, { cause: e });
    }
    try {
      return await GgufFile.#read(path, source);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /**
   * Reads a GGUF file already in memory (`path` names it in errors).
   *
   * @example
   * ```ts ignore
   * import { GgufFile } from "./gguf.ts";
   * using f = await GgufFile.fromBytes("model.gguf", await Deno.readFile("model.gguf"));
   * f.metadata.get("general.architecture"); // "llama"
   * ```
   */
  static async fromBytes(path: string, bytes: Uint8Array): Promise<GgufFile> {
    return await GgufFile.#read(path, bytesSource(bytes));
  }

  static async #read(path: string, source: ByteSource): Promise<GgufFile> {
    const size = source.size;
    // Metadata (the tokenizer mostly) is a few MB: read 4 MiB, then double until the header fits.
    for (let n = Math.min(size, 1 << 22);; n = Math.min(size, n * 2)) {
      const bytes = new Uint8Array(n);
      if (await source.readAt(0, bytes) !== n) {
        throw new GgufError(path, "the file ended while reading its header (changed on disk?)");
      }
      const header = parseGgufHeader(path, bytes, size);
      if (header) return new GgufFile(path, source, header);
    }
  }

  /** Tensor `name`'s info; throws naming the file when it has none. */
  info(name: string): GgufTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new GgufError(this.path, `no tensor named ${describe(name)} (the file has ${this.tensors.size})`);
    return t;
  }

  /** The raw (quantized) bytes of tensor `name`. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    if (this.#source === null) throw new GgufError(this.path, "read after close");
    const out = new Uint8Array(t.byteLength);
    if (await this.#source.readAt(t.offset, out) !== out.length) {
      throw new GgufError(this.path, `tensor ${describe(name)}: file ended early (changed on disk?)`);
    }
    return out;
  }

  /** Tensor `name` dequantized to float32, in ggml order (rows of dims[0] elements). */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    if (!DEQUANTIZABLE.includes(t.type.name)) {
      throw new GgufError(
        this.path,
        `tensor ${describe(name)} is ${t.type.name}, which lorac cannot dequantize (it reads ` +
          `${DEQUANTIZABLE.join(", ")}); re-quantize the GGUF to one of those (e.g. Q4_K_M) or use the HF model`,
      );
    }
    return dequantize(t.type, await this.readBytes(name), new Float32Array(t.numel), t.numel);
  }

  /** Closes the file; later reads throw. */
  close(): void {
    this.#source?.close();
    this.#source = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

const LAYER_NAMES: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

const GLOBAL_NAMES: Record<string, string> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

/**
 * The Hugging Face Llama name of a llama.cpp tensor name, or null for
 * tensors HF has no counterpart for (rope_freqs.weight, which becomes
 * RoPE scaling in the config, or names of other architectures).
 *
 * @example
 * ```ts
 * import { hfLlamaName } from "./gguf.ts";
 * hfLlamaName("blk.3.attn_q.weight"); // "model.layers.3.self_attn.q_proj.weight"
 * hfLlamaName("output_norm.weight"); // "model.norm.weight"
 * ```
 */
export function hfLlamaName(ggufName: string): string | null {
  if (ggufName in GLOBAL_NAMES) return GLOBAL_NAMES[ggufName];
  const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(ggufName);
  if (!m || !(m[2] in LAYER_NAMES)) return null;
  return `model.layers.${m[1]}.${LAYER_NAMES[m[2]]}.weight`;
}

/**
 * Undoes llama.cpp's Q/K row permutation into a new array: convert_hf_to_gguf
 * stores each head's rows [first half | second half] interleaved (row 2a+b of
 * a head is HF row b·(headDim/2)+a), the inverse of its `permute(w, n_head,
 * n_head_kv)`. `rows` holds nHeads·headDim rows of `rowLength` floats.
 *
 * @example
 * ```ts
 * import { unpermuteQK } from "./gguf.ts";
 * // One head of 4 rows, rows stored interleaved [r0, r2, r1, r3] -> [r0, r1, r2, r3].
 * unpermuteQK(new Float32Array([0, 2, 1, 3]), 1, 1); // Float32Array [0, 1, 2, 3]
 * ```
 */
export function unpermuteQK(src: Float32Array, nHeads: number, rowLength: number): Float32Array {
  const rows = src.length / rowLength;
  const headDim = rows / nHeads;
  if (!Number.isInteger(rows) || !Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(`${rows} rows do not split into ${nHeads} heads of an even size`);
  }
  const half = headDim / 2;
  const out = new Float32Array(src.length);
  for (let h = 0; h < nHeads; h++) {
    for (let a = 0; a < half; a++) {
      for (let b = 0; b < 2; b++) {
        const from = (h * headDim + 2 * a + b) * rowLength;
        out.set(src.subarray(from, from + rowLength), (h * headDim + b * half + a) * rowLength);
      }
    }
  }
  return out;
}

/** The metadata key `key` (or `fallback` when absent) as a positive integer; throws LlamaConfigError naming it. */
function count(f: GgufFile, key: string, fallback?: number): number {
  const v = f.metadata.get(key) ?? fallback;
  if (v === undefined) {
    throw new LlamaConfigError(f.path, `metadata ${key} is missing: re-convert the model with a current llama.cpp`);
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw new LlamaConfigError(f.path, `metadata ${key} must be a positive integer, got ${describe(v)}`);
  }
  if (v > MAX_CONFIG_SIZE) {
    throw new LlamaConfigError(f.path, `metadata ${key} is ${v}, more than lorac's limit of 2^31-1: corrupted file?`);
  }
  return v;
}

/** The metadata key `key` (or `fallback`) as a positive finite number. */
function positive(f: GgufFile, key: string, fallback?: number): number {
  const v = f.metadata.get(key) ?? fallback;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
    throw new LlamaConfigError(
      f.path,
      v === undefined ? `metadata ${key} is missing` : `metadata ${key} must be a positive number, got ${describe(v)}`,
    );
  }
  return v;
}

/** The metadata key `key` as a token id, or null when absent. */
function tokenId(f: GgufFile, key: string): number | null {
  const v = f.metadata.get(key);
  if (v === undefined) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new LlamaConfigError(f.path, `metadata ${key} must be a token id, got ${describe(v)}`);
  }
  return v;
}

/**
 * A LlamaConfig from a GGUF's `llama.*` metadata; refuses any other
 * general.architecture, and sizes that are not positive integers or do not
 * fit together (heads that do not divide, an odd head size). A
 * `rope_freqs.weight` tensor (llama.cpp's form of the llama3 RoPE scaling)
 * becomes `frequency_factors` scaling.
 *
 * @example
 * ```ts ignore
 * import { GgufFile, ggufLlamaConfig } from "./gguf.ts";
 * using f = await GgufFile.open("SmolLM2-135M-Instruct.Q4_1.gguf");
 * (await ggufLlamaConfig(f)).numKvHeads; // 3
 * ```
 */
export async function ggufLlamaConfig(f: GgufFile): Promise<LlamaConfig> {
  const fail = (problem: string): never => {
    throw new LlamaConfigError(f.path, problem);
  };
  const arch = f.metadata.get("general.architecture");
  if (arch !== "llama") fail(`general.architecture is ${describe(arch)}; lorac reads Llama-family GGUFs ("llama")`);
  const hiddenSize = count(f, "llama.embedding_length");
  const numHeads = count(f, "llama.attention.head_count");
  const numKvHeads = count(f, "llama.attention.head_count_kv", numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(
      `llama.attention.head_count ${numHeads} is not a multiple of llama.attention.head_count_kv ${numKvHeads}`,
    );
  }
  const headDimKey = ["llama.attention.key_length", "llama.rope.dimension_count"].find((k) => f.metadata.has(k));
  if (headDimKey === undefined && hiddenSize % numHeads !== 0) {
    fail(
      `llama.embedding_length ${hiddenSize} is not divisible by llama.attention.head_count ${numHeads} ` +
        "and llama.attention.key_length is not given",
    );
  }
  const headDim = headDimKey === undefined ? hiddenSize / numHeads : count(f, headDimKey);
  if (headDim % 2 !== 0) fail(`the head size ${headDim} is odd: RoPE rotates pairs of dimensions`);
  if (headDim > MAX_HEAD_DIM) fail(`the head size ${headDim} is wider than ${MAX_HEAD_DIM}: corrupted file?`);
  const embd = f.tensors.get("token_embd.weight");
  const tokens = f.metadata.get("tokenizer.ggml.tokens");
  const vocabSize = count(
    f,
    "llama.vocab_size",
    embd?.shape[0] ?? (Array.isArray(tokens) ? tokens.length : undefined),
  );
  let ropeScaling: RopeScaling = { type: "none" };
  const scaling = f.metadata.get("llama.rope.scaling.type");
  const freqs = f.tensors.get("rope_freqs.weight");
  if (freqs) {
    if (freqs.numel !== headDim / 2) {
      fail(`tensor rope_freqs.weight has ${freqs.numel} values; the head size ${headDim} needs ${headDim / 2}`);
    }
    const factors = await f.readFloat32("rope_freqs.weight");
    const bad = factors.findIndex((x) => !(x > 0 && x < Infinity));
    if (bad >= 0) fail(`tensor rope_freqs.weight holds ${factors[bad]} at ${bad}: RoPE frequency factors are positive`);
    ropeScaling = { type: "frequency_factors", factors };
  } else if (scaling === "linear") {
    ropeScaling = { type: "linear", factor: positive(f, "llama.rope.scaling.factor") };
  } else if (scaling !== undefined && scaling !== "none") {
    fail(`llama.rope.scaling.type ${describe(scaling)} is not supported (none, linear)`);
  }
  const eos = tokenId(f, "tokenizer.ggml.eos_token_id");
  return {
    architecture: "LlamaForCausalLM",
    hiddenSize,
    numLayers: count(f, "llama.block_count"),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: count(f, "llama.feed_forward_length"),
    vocabSize,
    rmsNormEps: positive(f, "llama.attention.layer_norm_rms_epsilon"),
    ropeTheta: positive(f, "llama.rope.freq_base", 10000),
    ropeScaling,
    tieWordEmbeddings: !f.tensors.has("output.weight"),
    bosTokenId: tokenId(f, "tokenizer.ggml.bos_token_id"),
    eosTokenIds: eos === null ? [] : [eos],
    padTokenId: tokenId(f, "tokenizer.ggml.padding_token_id"),
    maxPositionEmbeddings: count(f, "llama.context_length", 2048),
  };
}

/**
 * A Llama GGUF seen as a Hugging Face checkpoint: HF tensor names and shapes,
 * and float32 weights in HF layout (Q/K rows un-permuted).
 *
 * @example
 * ```ts ignore
 * import { GgufLlamaWeights } from "./gguf.ts";
 * using w = await GgufLlamaWeights.open("SmolLM2-135M-Instruct.Q4_1.gguf");
 * const q = await w.readFloat32("model.layers.0.self_attn.q_proj.weight"); // [576, 576], HF row order
 * ```
 */
export class GgufLlamaWeights implements Disposable {
  /** The underlying file. */
  readonly file: GgufFile;
  /** The model's config from the GGUF metadata. */
  readonly config: LlamaConfig;
  readonly #names: Map<string, GgufTensorInfo>;

  private constructor(file: GgufFile, config: LlamaConfig, names: Map<string, GgufTensorInfo>) {
    this.file = file;
    this.config = config;
    this.#names = names;
  }

  /** Opens a GGUF, checks it is a Llama and maps its tensor names; throws naming unknown tensors. */
  static async open(path: string): Promise<GgufLlamaWeights> {
    const file = await GgufFile.open(path);
    try {
      return await GgufLlamaWeights.fromFile(file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * The Llama view of an open GGUF (which it then owns and closes); throws
   * LlamaConfigError for a bad config, GgufError for tensors that are not Llama's.
   *
   * @example
   * ```ts ignore
   * import { GgufFile, GgufLlamaWeights } from "./gguf.ts";
   * using w = await GgufLlamaWeights.fromFile(await GgufFile.fromBytes("m.gguf", await Deno.readFile("m.gguf")));
   * w.config.numLayers;
   * ```
   */
  static async fromFile(file: GgufFile): Promise<GgufLlamaWeights> {
    const config = await ggufLlamaConfig(file);
    const names = new Map<string, GgufTensorInfo>();
    const unknown: string[] = [];
    for (const t of file.tensors.values()) {
      const hf = hfLlamaName(t.name);
      if (hf !== null) names.set(hf, t);
      else if (t.name !== "rope_freqs.weight") unknown.push(t.name);
    }
    if (unknown.length > 0) {
      throw new GgufError(
        file.path,
        `tensors with no Llama counterpart: ${unknown.slice(0, 5).map((n) => oneLine(n, 60)).join(", ")}` +
          `${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""}; is this really a Llama model?`,
      );
    }
    return new GgufLlamaWeights(file, config, names);
  }

  /** HF tensor names, in file order. */
  names(): string[] {
    return [...this.#names.keys()];
  }

  /** True when the model has HF tensor `name`. */
  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** The GGUF tensor behind HF name `name`. */
  info(name: string): GgufTensorInfo {
    const t = this.#names.get(name);
    if (!t) throw new GgufError(this.file.path, `no tensor maps to ${describe(name)}`);
    return t;
  }

  /** HF tensor `name` as float32 in HF layout (shape = info(name).shape). */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    const heads = name.endsWith("self_attn.q_proj.weight")
      ? this.config.numHeads
      : name.endsWith("self_attn.k_proj.weight")
      ? this.config.numKvHeads
      : 0;
    // Q and K rows are stored permuted per head: they must split into heads of an even size.
    const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
    if (heads > 0 && (rows % heads !== 0 || (rows / heads) % 2 !== 0)) {
      throw new GgufError(
        this.file.path,
        `tensor ${describe(t.name)} has ${rows} rows, which do not split into ${heads} heads of an even size: ` +
          "the tensor does not match the llama.attention.* metadata",
      );
    }
    const data = await this.file.readFloat32(t.name);
    return heads > 0 && t.numel > 0 ? unpermuteQK(data, heads, t.dims[0]) : data;
  }

  /** Closes the file. */
  close(): void {
    this.file.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
