/**
 * safetensors files: a little-endian u64 header length, a JSON header naming
 * every tensor's dtype, shape and byte range, then the raw data. Reading is
 * lazy (only the header up front, each tensor's bytes on request) and checks
 * the header the way the reference Rust crate does: known dtypes, shape ×
 * dtype size = byte range, ranges that tile the data section exactly (no
 * overlap, no hole, nothing past the end). Writing is atomic (a temporary
 * name, then a rename). A sharded checkpoint is read through its
 * model.safetensors.index.json.
 *
 * Data are little-endian, as on every machine lorac runs on (x86-64, aarch64).
 *
 * @module
 */

import { bf16ArrayToF32, f16ArrayToF32 } from "./float16.ts";
import { type ByteSource, bytesSource, openFileSource } from "../util/read_at.ts";
import { describe, oneLine } from "../util/describe.ts";

/** Element types of the safetensors format, with their size in bits. */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
} as const;

/** A safetensors element type name, as written in the header. */
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BITS;

/** The reference implementation's limit: a larger header is corruption, not a model. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor of a file: where its bytes are and what they mean. */
export interface SafetensorsTensorInfo {
  /** The tensor's name in the header. */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDType;
  /** Dimensions, outermost first ([] is a scalar). */
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  /** Bytes of data. */
  readonly byteLength: number;
}

/** A parsed header: the tensors in file order and the free-form string metadata. */
export interface SafetensorsHeader {
  /** Tensors by name, in data order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A safetensors file or checkpoint that cannot be read or written; the message names the file and the problem. */
export class SafetensorsError extends Error {
  /** The file (or folder) concerned. */
  readonly path: string;

  /** Creates the error; the message is `<path>: <problem>`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.name = "SafetensorsError";
    this.path = path;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates a header. `header` is the JSON bytes (after the 8-byte
 * length); `dataBytes` is the size of the data section that follows it.
 *
 * @example
 * ```ts
 * import { parseSafetensorsHeader } from "./safetensors.ts";
 * const json = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
 * const h = parseSafetensorsHeader("x.safetensors", new TextEncoder().encode(json), 8, 8 + json.length);
 * h.tensors.get("w")?.offset; // 8 + json.length
 * ```
 */
export function parseSafetensorsHeader(
  path: string,
  header: Uint8Array,
  dataBytes: number,
  dataStart: number = 8 + header.length,
): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new SafetensorsError(path, problem);
  };
  // A header that parses but does not describe its data: the file was damaged on the way.
  const damaged = (problem: string): never => fail(`${problem}; the file is damaged: re-download or re-export it`);
  let parsed: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(header);
    if (!text.startsWith("{")) fail(`the header does not start with '{': this is not a safetensors file`);
    parsed = JSON.parse(text);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    fail(
      `the header is not valid UTF-8 JSON (${oneLine((e as Error).message, 120)}): ` +
        "the file is corrupted or not safetensors; re-download or re-export it",
    );
  }
  if (!isRecord(parsed)) {
    return fail(`the header is ${describe(parsed, 40)}, not a JSON object: not a safetensors file`);
  }

  const metadata: Record<string, string> = {};
  const entries: SafetensorsTensorInfo[] = [];
  const begins = new Map<string, number>();
  for (const [name, value] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (!isRecord(value)) damaged(`__metadata__ must be an object of strings, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") damaged(`__metadata__[${describe(k)}] must be a string, got ${describe(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const tensor = `tensor ${describe(name)}`;
    if (!isRecord(value)) return damaged(`${tensor}: expected {dtype, shape, data_offsets}, got ${describe(value)}`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== "string" || !(dtype in SAFETENSORS_DTYPE_BITS)) {
      fail(
        `${tensor}: unknown dtype ${describe(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_BITS).join(", ")}); ` +
          "convert the weights to F32, F16 or BF16",
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      damaged(`${tensor}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      damaged(
        `${tensor}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`,
      );
    }
    const [begin, end] = offsets as number[];
    const bits = SAFETENSORS_DTYPE_BITS[dtype as SafetensorsDType];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * bits) || (numel * bits) % 8 !== 0) {
      damaged(`${tensor}: ${numel} elements of ${dtype} are not a whole number of bytes`);
    }
    if ((numel * bits) / 8 !== end - begin) {
      damaged(
        `${tensor}: shape ${describe(shape)} of ${dtype} needs ${(numel * bits) / 8} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataBytes) {
      damaged(
        `${tensor}: data_offsets [${begin}, ${end}] run past the data section (${dataBytes} bytes): truncated?`,
      );
    }
    begins.set(name, begin);
    entries.push({
      name,
      dtype: dtype as SafetensorsDType,
      shape: [...(shape as number[])],
      offset: dataStart + begin,
      byteLength: end - begin,
    });
  }
  // The tensors must tile the data section exactly, as the reference crate requires.
  entries.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let covered = 0;
  let previous = "";
  for (const t of entries) {
    const begin = begins.get(t.name)!;
    if (begin < covered) {
      damaged(`tensors ${describe(previous)} and ${describe(t.name)} overlap (byte ${begin} < ${covered})`);
    }
    if (begin > covered) damaged(`bytes [${covered}, ${begin}) before tensor ${describe(t.name)} belong to no tensor`);
    covered = begin + t.byteLength;
    previous = t.name;
  }
  if (covered !== dataBytes) {
    damaged(`the data section holds ${dataBytes} bytes but the tensors cover ${covered}: extra or missing data`);
  }
  return { tensors: new Map(entries.map((t) => [t.name, t])), metadata };
}

/** The dtypes {@link toFloat32} converts. */
export const FLOAT_DTYPES: readonly SafetensorsDType[] = ["F32", "F16", "BF16", "F64"];

/**
 * Converts a tensor's raw bytes of dtype F32, F16, BF16 or F64 to float32.
 *
 * @example
 * ```ts
 * import { toFloat32 } from "./safetensors.ts";
 * toFloat32("BF16", new Uint8Array([0xc0, 0x3f]), "w"); // Float32Array [1.5]
 * ```
 */
export function toFloat32(dtype: SafetensorsDType, bytes: Uint8Array, name: string): Float32Array {
  // A fresh, aligned copy when the view is misaligned for its element size.
  const aligned = (size: number) => bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case "F32": {
      const b = aligned(4);
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    }
    case "F16":
    case "BF16": {
      const b = aligned(2);
      const half = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
      const out = new Float32Array(half.length);
      return dtype === "F16" ? f16ArrayToF32(half, out) : bf16ArrayToF32(half, out);
    }
    case "F64": {
      const b = aligned(8);
      return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8));
    }
    default:
      throw new TypeError(
        `tensor "${name}" is ${dtype}, not a float type (F32, F16, BF16, F64) that converts to float32`,
      );
  }
}

/**
 * One safetensors file, open for lazy reads by tensor name.
 *
 * @example
 * ```ts ignore
 * import { SafetensorsFile } from "./safetensors.ts";
 * using f = await SafetensorsFile.open("model.safetensors");
 * const w = await f.readFloat32("model.embed_tokens.weight");
 * ```
 */
export class SafetensorsFile implements Disposable {
  /** The file's path. */
  readonly path: string;
  /** Tensors by name, in data order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** The `__metadata__` strings. */
  readonly metadata: Readonly<Record<string, string>>;
  #source: ByteSource | null;

  private constructor(path: string, source: ByteSource, header: SafetensorsHeader) {
    this.path = path;
    this.#source = source;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
  }

  /** Opens `path` and validates its header; throws SafetensorsError naming what is wrong. */
  static async open(path: string): Promise<SafetensorsFile> {
    let source: ByteSource;
    try {
      source = await openFileSource(path);
    } catch (e) {
      throw new SafetensorsError(path, `cannot open: ${oneLine((e as Error).message)}`, { cause: e });
    }
    try {
      return await SafetensorsFile.#read(path, source);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /**
   * Reads a safetensors file already in memory (`path` names it in errors);
   * the tensors are views of `bytes` until read.
   *
   * @example
   * ```ts
   * import { SafetensorsFile } from "./safetensors.ts";
   * const json = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
   * const bytes = new Uint8Array(8 + json.length + 4);
   * new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
   * bytes.set(json, 8);
   * using f = await SafetensorsFile.fromBytes("w.safetensors", bytes);
   * await f.readFloat32("w"); // Float32Array [0]
   * ```
   */
  static async fromBytes(path: string, bytes: Uint8Array): Promise<SafetensorsFile> {
    return await SafetensorsFile.#read(path, bytesSource(bytes));
  }

  static async #read(path: string, source: ByteSource): Promise<SafetensorsFile> {
    const size = source.size;
    if (size < 8) {
      throw new SafetensorsError(
        path,
        `${size} bytes is too short for a safetensors file: re-download or re-export it`,
      );
    }
    const prefix = new Uint8Array(8);
    await source.readAt(0, prefix);
    // The length is checked against the file before anything of that size is allocated.
    const n = new DataView(prefix.buffer).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        path,
        `header length ${n} exceeds ${MAX_HEADER_BYTES} bytes: not a safetensors file, or a corrupted one`,
      );
    }
    if (8n + n > BigInt(size)) {
      throw new SafetensorsError(
        path,
        `header length ${n} runs past the end of the file (${size} bytes): truncated? re-download or re-export it`,
      );
    }
    const header = new Uint8Array(Number(n));
    if (await source.readAt(8, header) !== header.length) {
      throw new SafetensorsError(path, "the file ended while reading its header (changed on disk?)");
    }
    return new SafetensorsFile(path, source, parseSafetensorsHeader(path, header, size - 8 - header.length));
  }

  /** The tensor `name`'s entry; throws naming the file when it has no such tensor. */
  info(name: string): SafetensorsTensorInfo {
    const t = this.tensors.get(name);
    if (!t) {
      throw new SafetensorsError(this.path, `no tensor named ${describe(name)} (the file has ${this.tensors.size})`);
    }
    return t;
  }

  /** The raw bytes of tensor `name`, in a fresh buffer. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    if (this.#source === null) throw new SafetensorsError(this.path, "read after close");
    const out = new Uint8Array(t.byteLength);
    if (await this.#source.readAt(t.offset, out) !== out.length) {
      throw new SafetensorsError(this.path, `tensor ${describe(name)}: file ended early (changed on disk?)`);
    }
    return out;
  }

  /** Tensor `name` as float32 (from F32, F16, BF16 or F64); other dtypes throw SafetensorsError. */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      throw new SafetensorsError(
        this.path,
        `tensor ${describe(name)} is ${t.dtype}, not a float type (${FLOAT_DTYPES.join(", ")}); ` +
          "export the weights as floats",
      );
    }
    return toFloat32(t.dtype, await this.readBytes(name), name);
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

/** A tensor to write: element type, shape and the raw little-endian elements. */
export interface TensorToWrite {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions, outermost first. */
  shape: readonly number[];
  /** Elements in row-major order (any typed array whose bytes are the data). */
  data: ArrayBufferView;
}

function byteView(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * Writes tensors (and optional `__metadata__` strings) to `path` atomically:
 * the data go to a temporary name beside it, which is then renamed. Tensors
 * are laid out largest element first, then by name, so each one starts
 * aligned to its element size.
 *
 * @example
 * ```ts
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/a.safetensors`, { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, {
 *   format: "pt",
 * });
 * using f = await SafetensorsFile.open(`${dir}/a.safetensors`);
 * await f.readFloat32("w"); // Float32Array [1, 2]
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const names = Object.keys(tensors).sort((a, b) => {
    const d = SAFETENSORS_DTYPE_BITS[tensors[b].dtype] - SAFETENSORS_DTYPE_BITS[tensors[a].dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") {
      throw new SafetensorsError(path, `"__metadata__" is reserved and cannot name a tensor`);
    }
    const t = tensors[name];
    if (!(t.dtype in SAFETENSORS_DTYPE_BITS)) {
      throw new SafetensorsError(path, `tensor "${name}": unknown dtype ${t.dtype}`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const bytes = (numel * SAFETENSORS_DTYPE_BITS[t.dtype]) / 8;
    if (bytes !== t.data.byteLength) {
      throw new SafetensorsError(
        path,
        `tensor "${name}": shape [${t.shape}] of ${t.dtype} needs ${bytes} bytes, the data have ${t.data.byteLength}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data start 8-byte aligned, as the reference writer does.
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded.length), true);

  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
  const base = path.slice(dir.length);
  const temp = `${dir}.${base}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using file = await Deno.open(temp, { write: true, createNew: true });
    await writeAll(file, prefix);
    await writeAll(file, padded);
    for (const name of names) await writeAll(file, byteView(tensors[name].data));
    await file.sync();
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new SafetensorsError(path, `cannot write: ${(e as Error).message}`, { cause: e });
  }
  await Deno.rename(temp, path);
}

/** The index file of a sharded checkpoint. */
export const INDEX_FILE = "model.safetensors.index.json";

/**
 * A model's weights: one safetensors file, or the shards an index names.
 * Tensors are read lazily by name from whichever shard holds them.
 *
 * @example
 * ```ts ignore
 * import { SafetensorsCheckpoint } from "./safetensors.ts";
 * using ckpt = await SafetensorsCheckpoint.open("path/to/model-folder");
 * for (const name of ckpt.names()) console.log(name, ckpt.info(name).shape);
 * ```
 */
export class SafetensorsCheckpoint implements Disposable {
  /** The folder or file it was opened from. */
  readonly path: string;
  readonly #shards: SafetensorsFile[];
  readonly #where: Map<string, SafetensorsFile>;

  private constructor(path: string, shards: SafetensorsFile[], where: Map<string, SafetensorsFile>) {
    this.path = path;
    this.#shards = shards;
    this.#where = where;
  }

  /**
   * Opens a checkpoint from a model folder (its model.safetensors.index.json,
   * else model.safetensors, else its only *.safetensors), an index file, or
   * one .safetensors file.
   */
  static async open(path: string): Promise<SafetensorsCheckpoint> {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(path);
    } catch (e) {
      throw new SafetensorsError(path, `cannot open: ${oneLine((e as Error).message)}`, { cause: e });
    }
    if (stat.isFile) {
      if (path.endsWith(".json")) return await SafetensorsCheckpoint.#fromIndex(path);
      const f = await SafetensorsFile.open(path);
      return new SafetensorsCheckpoint(path, [f], new Map([...f.tensors.keys()].map((n) => [n, f])));
    }
    const dir = path.replace(/\/+$/, "");
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    if (names.includes(INDEX_FILE)) return await SafetensorsCheckpoint.#fromIndex(`${dir}/${INDEX_FILE}`);
    const files = names.filter((n) => n.endsWith(".safetensors")).sort();
    const pick = files.includes("model.safetensors") ? "model.safetensors" : files.length === 1 ? files[0] : null;
    if (pick === null) {
      throw new SafetensorsError(
        dir,
        files.length === 0
          ? "no model.safetensors, *.safetensors or model.safetensors.index.json in this folder"
          : `several .safetensors files (${files.join(", ")}) and no ${INDEX_FILE} saying which to use: ` +
            "pass the file itself",
      );
    }
    return await SafetensorsCheckpoint.open(`${dir}/${pick}`);
  }

  static async #fromIndex(indexPath: string): Promise<SafetensorsCheckpoint> {
    let index: unknown;
    try {
      index = JSON.parse(await Deno.readTextFile(indexPath));
    } catch (e) {
      throw new SafetensorsError(indexPath, `not a readable JSON index: ${oneLine((e as Error).message)}`, {
        cause: e,
      });
    }
    const map = isRecord(index) ? index.weight_map : undefined;
    if (!isRecord(map)) throw new SafetensorsError(indexPath, `no "weight_map" object of tensor name -> shard file`);
    const dir = indexPath.includes("/") ? indexPath.slice(0, indexPath.lastIndexOf("/")) : ".";
    const byFile = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const [name, file] of Object.entries(map)) {
        if (typeof file !== "string" || file.startsWith("/") || file.split("/").includes("..")) {
          throw new SafetensorsError(
            indexPath,
            `weight_map[${describe(name)}] must be a shard file name in this folder, got ${describe(file)}`,
          );
        }
        let shard = byFile.get(file);
        if (!shard) {
          shard = await SafetensorsFile.open(`${dir}/${file}`);
          byFile.set(file, shard);
        }
        if (!shard.tensors.has(name)) {
          throw new SafetensorsError(
            indexPath,
            `weight_map puts ${describe(name)} in ${oneLine(file)}, which has no such tensor`,
          );
        }
        where.set(name, shard);
      }
    } catch (e) {
      for (const f of byFile.values()) f.close();
      throw e;
    }
    return new SafetensorsCheckpoint(indexPath, [...byFile.values()], where);
  }

  /** Every tensor name, in index (or file) order. */
  names(): string[] {
    return [...this.#where.keys()];
  }

  /** True when the checkpoint has tensor `name`. */
  has(name: string): boolean {
    return this.#where.has(name);
  }

  #shard(name: string): SafetensorsFile {
    const f = this.#where.get(name);
    if (!f) throw new SafetensorsError(this.path, `no tensor named ${describe(name)} in this checkpoint`);
    return f;
  }

  /** Tensor `name`'s entry (dtype, shape, shard offset). */
  info(name: string): SafetensorsTensorInfo {
    return this.#shard(name).info(name);
  }

  /** The raw bytes of tensor `name`. */
  async readBytes(name: string): Promise<Uint8Array> {
    return await this.#shard(name).readBytes(name);
  }

  /** Tensor `name` as float32 (from F32, F16, BF16 or F64). */
  async readFloat32(name: string): Promise<Float32Array> {
    return await this.#shard(name).readFloat32(name);
  }

  /** Closes every shard. */
  close(): void {
    for (const f of this.#shards) f.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
