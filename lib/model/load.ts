/**
 * Loads a Llama-family model onto a Backend from a Hugging Face folder, one
 * .safetensors file or index inside such a folder (to pick, say,
 * model.bf16.safetensors over model.safetensors), a Hub id (through the
 * standard Hugging Face cache) or a GGUF file.
 *
 * The weights stream tensor by tensor, so host memory stays near one tensor
 * whatever the model's size: each tensor is read (F32 and BF16 safetensors as
 * their raw bytes; F16 and GGUF types dequantized to f32), uploaded to a
 * staging tensor on the device, turned into its final form there — NF4 for
 * the seven linear projections, bf16 for embeddings and an untied lm_head,
 * f32 (or bf16) for the RMSNorm weights — and the staging and host copies are
 * dropped before the next read. Everything is checked against the config
 * before the first byte goes to the device: missing tensors, shapes, dtypes.
 * `baseDtype: "bf16" | "f32"` keeps the linears dense instead (parity tests
 * against unquantized references), with f32 embeddings and lm_head for "f32".
 *
 * Tokenizer: tokenizer.json (with tokenizer_config.json when present) from a
 * folder, the `tokenizer.ggml.*` metadata from a GGUF. `tokenizer: "<path>"`
 * uses another tokenizer.json; `tokenizer: false` loads none (for weights-only
 * folders such as stories260K's, whose tokenizer is a SentencePiece .model).
 *
 * @module
 */

import type { Backend } from "../backend/backend.ts";
import { nf4Quantize } from "../backend/nf4.ts";
import type { Tensor } from "../backend/tensor.ts";
import { DEQUANTIZABLE } from "../formats/gguf_quants.ts";
import { GgufLlamaWeights } from "../formats/gguf.ts";
import { type LlamaConfig, readLlamaConfig } from "../formats/llama_config.ts";
import { SafetensorsCheckpoint } from "../formats/safetensors.ts";
import { progressSink } from "../hub/download.ts";
import { type ModelOptions, resolveModel } from "../hub/model.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { formatBytes, Progress, type ProgressSink } from "../ui/progress.ts";
import {
  llamaTensorSlots,
  LlamaWeights,
  type LoadedTensor,
  type NormDType,
  parameterCount,
  type TensorSlot,
} from "./weights.ts";

/** A model that cannot be loaded; the message names the file and says what is wrong. */
export class ModelLoadError extends Error {
  /** The file or folder concerned. */
  readonly path: string;

  /** Creates the error; the message is `<path>: <problem>`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.name = "ModelLoadError";
    this.path = path;
  }
}

/** What {@link LoadOptions.onTensor} hears after each tensor reaches the device. */
export interface TensorLoadEvent {
  /** HF tensor name. */
  readonly name: string;
  /** What it became: NF4 linear, bf16 embedding / lm_head, norm. */
  readonly role: TensorSlot["role"];
  /** 0-based position in the load order, and the number of tensors loaded in all. */
  readonly index: number;
  /** Tensors in the whole load. */
  readonly count: number;
  /** The tensor's type in the file (safetensors dtype or ggml type). */
  readonly sourceDtype: string;
  /** Host bytes held for this tensor while it was loaded (raw read plus any f32 copies). */
  readonly hostBytes: number;
  /** Device bytes it occupies now. */
  readonly deviceBytes: number;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** NF4 block size of the linear weights (a power of two, 64..4096; default 64, bitsandbytes' default). */
  blocksize?: number;
  /** Dtype of the RMSNorm weights on the device (default f32: RMSNorm computes in fp32). */
  normDtype?: NormDType;
  /**
   * How the frozen base is stored: "nf4" (default; linears NF4, embeddings and lm_head bf16), or dense
   * "bf16" (linears bf16) or "f32" (linears, embeddings and lm_head f32), for comparisons with unquantized
   * references.
   */
  baseDtype?: "nf4" | "bf16" | "f32";
  /** A tokenizer.json to use instead of the model's own, or false to load no tokenizer. */
  tokenizer?: string | false;
  /** Progress over the tensors: true (default) on stderr, false none, or a sink of your own. */
  progress?: boolean | ProgressSink;
  /** Hub options for a model id (revision, token, cache folder, offline, ...). */
  hub?: ModelOptions;
  /** Called after each tensor is on the device (its host copy dropped); throwing aborts the load. */
  onTensor?: (event: TensorLoadEvent) => void;
  /**
   * Called with the config once the checkpoint and the tokenizer are checked, before the first weight is read;
   * throwing stops the load there (e.g. an adapter that does not fit this model).
   */
  checkConfig?: (config: LlamaConfig) => void;
}

/** Where a loaded model came from. */
export interface ModelSourceInfo {
  /** What the caller passed (folder, .gguf file or Hub id). */
  readonly input: string;
  /** The local folder or .gguf file it resolved to. */
  readonly path: string;
  /** The weights' file format. */
  readonly format: "safetensors" | "gguf";
  /** True when `input` was a Hub id resolved through the Hugging Face cache. */
  readonly fromHub: boolean;
  /** The weights file (a .safetensors, an index, or the .gguf). */
  readonly weightsPath: string;
  /** Number of loaded tensors per source dtype, e.g. { F32: 47 } or { Q4_1: 200, Q6_K: 1, F32: 61 }. */
  readonly dtypes: Readonly<Record<string, number>>;
}

/** Load time and memory. */
export interface LoadStats {
  /** Wall-clock seconds from the call to the loaded model (Hub download included). */
  readonly seconds: number;
  /** Tensors loaded. */
  readonly tensors: number;
  /** Bytes of those tensors in the file. */
  readonly sourceBytes: number;
  /** The most host bytes the loader held at once for tensor data (one tensor's raw bytes and f32 copies). */
  readonly hostPeakBytes: number;
  /** The process's resident set size, sampled after each tensor: its peak (on the CPU build it includes the weights). */
  readonly rssPeakBytes: number;
  /** Device bytes of the loaded weights. */
  readonly deviceBytes: number;
}

/** A model on a device: config, tokenizer, weights, where it came from, what loading cost. */
export interface LoadedModel<T extends Tokenizer | null = Tokenizer> extends Disposable {
  /** The model's shape and constants. */
  readonly config: LlamaConfig;
  /** The tokenizer, or null when loaded with `tokenizer: false`. */
  readonly tokenizer: T;
  /** The weights on the device. */
  readonly weights: LlamaWeights;
  /** Where it came from. */
  readonly source: ModelSourceInfo;
  /** The backend's device line at load time, e.g. "cpu: AMD EPYC 7B12, 2 threads, avx2". */
  readonly device: string;
  /** Load time and memory. */
  readonly stats: LoadStats;
  /** Frees the weights. */
  dispose(): void;
}

/** A tensor's data on the host, in a dtype the device can take as is. */
type HostTensor = { dtype: "f32"; data: Float32Array; hostBytes: number } | {
  dtype: "bf16";
  data: Uint16Array;
  hostBytes: number;
};

/** The checkpoint side of a load: HF names, shapes, types and one-at-a-time reads. */
interface TensorReader extends Disposable {
  /** The weights file, for messages. */
  readonly path: string;
  names(): string[];
  has(name: string): boolean;
  shape(name: string): readonly number[];
  sourceDtype(name: string): string;
  sourceBytes(name: string): number;
  /** Why the tensor cannot be read as floats, or null when it can. */
  unreadable(name: string): string | null;
  read(name: string): Promise<HostTensor>;
}

const SAFETENSORS_FLOATS = ["F32", "BF16", "F16", "F64"];

function safetensorsReader(ckpt: SafetensorsCheckpoint): TensorReader {
  return {
    path: ckpt.path,
    names: () => ckpt.names(),
    has: (name) => ckpt.has(name),
    shape: (name) => ckpt.info(name).shape,
    sourceDtype: (name) => ckpt.info(name).dtype,
    sourceBytes: (name) => ckpt.info(name).byteLength,
    unreadable: (name) =>
      SAFETENSORS_FLOATS.includes(ckpt.info(name).dtype)
        ? null
        : `is ${ckpt.info(name).dtype}; lorac loads float weights (${SAFETENSORS_FLOATS.join(", ")})`,
    async read(name) {
      const info = ckpt.info(name);
      // F32 and BF16 go to the device as their own bytes (a fresh, aligned buffer); F16 and F64 via f32.
      if (info.dtype === "F32" || info.dtype === "BF16") {
        const bytes = await ckpt.readBytes(name);
        return info.dtype === "F32"
          ? {
            dtype: "f32",
            data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
            hostBytes: bytes.byteLength,
          }
          : {
            dtype: "bf16",
            data: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2),
            hostBytes: bytes.byteLength,
          };
      }
      const data = await ckpt.readFloat32(name);
      return { dtype: "f32", data, hostBytes: info.byteLength + data.byteLength };
    },
    [Symbol.dispose]: () => ckpt.close(),
  };
}

function ggufReader(w: GgufLlamaWeights): TensorReader {
  return {
    path: w.file.path,
    names: () => w.names(),
    has: (name) => w.has(name),
    shape: (name) => w.info(name).shape,
    sourceDtype: (name) => w.info(name).type.name,
    sourceBytes: (name) => w.info(name).byteLength,
    unreadable: (name) =>
      DEQUANTIZABLE.includes(w.info(name).type.name)
        ? null
        : `is ggml type ${w.info(name).type.name}; lorac dequantizes ${DEQUANTIZABLE.join(", ")}`,
    async read(name) {
      const data = await w.readFloat32(name);
      // Raw block bytes, their f32 dequantization, and for Q/K the un-permuted copy.
      const copies = /\.(q|k)_proj\.weight$/.test(name) ? 2 : 1;
      return { dtype: "f32", data, hostBytes: w.info(name).byteLength + copies * data.byteLength };
    },
    [Symbol.dispose]: () => w.close(),
  };
}

/** Checkpoint tensors that HF Llama checkpoints may carry and the model does not use. */
function ignorable(name: string, config: LlamaConfig): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name) || (config.tieWordEmbeddings && name === "lm_head.weight");
}

function describeShape(config: LlamaConfig): string {
  return `hidden_size ${config.hiddenSize}, ${config.numLayers} layers, ${config.numHeads} heads, ` +
    `${config.numKvHeads} kv heads, head_dim ${config.headDim}, intermediate_size ${config.intermediateSize}, ` +
    `vocab_size ${config.vocabSize}`;
}

function listNames(names: string[]): string {
  return names.slice(0, 5).map((n) => `"${n}"`).join(", ") + (names.length > 5 ? ` and ${names.length - 5} more` : "");
}

/** Throws a ModelLoadError for the first thing the checkpoint and config disagree on. */
function checkTensors(reader: TensorReader, slots: TensorSlot[], config: LlamaConfig, configSource: string): void {
  const missing = slots.filter((s) => !reader.has(s.name)).map((s) => s.name);
  if (missing.length > 0) {
    throw new ModelLoadError(
      reader.path,
      `missing ${missing.length} tensor(s) the config (${configSource}: ${describeShape(config)}) requires: ` +
        `${listNames(missing)}; is the checkpoint complete and made for this config?`,
    );
  }
  for (const s of slots) {
    const shape = reader.shape(s.name);
    if (shape.length !== s.shape.length || shape.some((d, i) => d !== s.shape[i])) {
      throw new ModelLoadError(
        reader.path,
        `tensor "${s.name}" has shape [${shape}] but the config (${configSource}: ${describeShape(config)}) ` +
          `gives [${s.shape}]: the weights and the config do not belong together`,
      );
    }
    const why = reader.unreadable(s.name);
    if (why !== null) throw new ModelLoadError(reader.path, `tensor "${s.name}" ${why}`);
  }
  const expected = new Set(slots.map((s) => s.name));
  const extra = reader.names().filter((n) => !expected.has(n) && !ignorable(n, config));
  if (extra.length > 0) {
    throw new ModelLoadError(
      reader.path,
      `tensors a Llama with this config does not have: ${listNames(extra)} ` +
        `(biases, another architecture, or a config that does not match the weights)`,
    );
  }
}

/** Moves one host tensor to the device in the form its role asks for; frees the staging copy. */
function place(
  backend: Backend,
  slot: TensorSlot,
  host: HostTensor,
  blocksize: number,
  normDtype: NormDType,
  baseDtype: "nf4" | "bf16" | "f32",
) {
  const staging: Tensor<"f32" | "bf16"> = host.dtype === "f32"
    ? backend.fromHost(host.data, slot.shape, "f32")
    : backend.fromHost(host.data, slot.shape, "bf16");
  const keepAs = (dtype: "f32" | "bf16"): Tensor<"f32" | "bf16"> => {
    if (staging.dtype === dtype) return staging;
    try {
      return backend.convert(staging, dtype);
    } finally {
      staging.free();
    }
  };
  switch (slot.role) {
    case "linear":
      if (baseDtype !== "nf4") return keepAs(baseDtype);
      try {
        return nf4Quantize(backend, staging, blocksize);
      } finally {
        staging.free();
      }
    case "embedding":
    case "lm_head":
      return keepAs(baseDtype === "f32" ? "f32" : "bf16");
    case "norm":
      return keepAs(normDtype);
  }
}

function deviceBytesOf(t: LoadedTensor): number {
  return "packed" in t ? t.packed.bytes + t.absmax.bytes : t.bytes;
}

/** Streams every slot from the reader to the device; on any failure frees what was loaded. */
async function loadWeights(
  reader: TensorReader,
  slots: TensorSlot[],
  config: LlamaConfig,
  backend: Backend,
  options: LoadOptions,
  label: string,
): Promise<{ weights: LlamaWeights; hostPeakBytes: number; rssPeakBytes: number; dtypes: Record<string, number> }> {
  const blocksize = options.blocksize ?? 64;
  const normDtype = options.normDtype ?? "f32";
  const baseDtype = options.baseDtype ?? "nf4";
  const sink = progressSink(options.progress);
  const total = slots.reduce((n, s) => n + reader.sourceBytes(s.name), 0);
  const bar = sink ? new Progress(label, { total, sink }) : undefined;
  const loaded = new Map<string, LoadedTensor>();
  const dtypes: Record<string, number> = {};
  let hostPeakBytes = 0;
  let rssPeakBytes = Deno.memoryUsage().rss;
  try {
    for (const [index, slot] of slots.entries()) {
      // The host copy lives in this iteration only: nothing keeps it once it is on the device.
      const host = await reader.read(slot.name);
      const hostBytes = host.hostBytes;
      const tensor = place(backend, slot, host, blocksize, normDtype, baseDtype);
      loaded.set(slot.name, tensor);
      hostPeakBytes = Math.max(hostPeakBytes, hostBytes);
      rssPeakBytes = Math.max(rssPeakBytes, Deno.memoryUsage().rss);
      const sourceDtype = reader.sourceDtype(slot.name);
      dtypes[sourceDtype] = (dtypes[sourceDtype] ?? 0) + 1;
      bar?.add(reader.sourceBytes(slot.name));
      options.onTensor?.({
        name: slot.name,
        role: slot.role,
        index,
        count: slots.length,
        sourceDtype,
        hostBytes,
        deviceBytes: deviceBytesOf(tensor),
      });
    }
    const weights = LlamaWeights.fromTensors(config, loaded);
    bar?.finish();
    return { weights, hostPeakBytes, rssPeakBytes, dtypes };
  } catch (e) {
    for (const t of loaded.values()) "packed" in t ? t[Symbol.dispose]() : t.free();
    // A log gets no summary of a load that failed: the error is the one line to read.
    if (sink?.isTerminal()) bar?.finish();
    throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function tokenizerFromJson(path: string): Promise<Tokenizer> {
  if (!(await exists(path))) {
    throw new ModelLoadError(
      path,
      "missing: the model's tokenizer.json is needed to encode text; put it beside config.json or give another " +
        "with --tokenizer <file> (`tokenizer: <path>` in the library; `tokenizer: false` loads the weights alone)",
    );
  }
  const config = path.replace(/tokenizer\.json$/, "tokenizer_config.json");
  const hasConfig = config !== path && await exists(config);
  try {
    return await Tokenizer.fromFile(path, hasConfig ? config : undefined);
  } catch (e) {
    throw new ModelLoadError(
      path,
      `cannot build the tokenizer (${(e as Error).message}); replace it with the model's own tokenizer.json, ` +
        "or give another with --tokenizer <file>",
      { cause: e },
    );
  }
}

/** A source opened far enough to check: config, tensors, and how to get the tokenizer. */
interface OpenedSource {
  config: LlamaConfig;
  configSource: string;
  reader: TensorReader;
  format: ModelSourceInfo["format"];
  ownTokenizer: () => Promise<Tokenizer>;
}

/** A .safetensors file or sharded index given directly: its folder holds config and tokenizer. */
const SAFETENSORS_PATH = /(\.safetensors|\.safetensors\.index\.json)$/i;

async function openFolder(dir: string, weights: string = dir): Promise<OpenedSource> {
  const configPath = `${dir}/config.json`;
  if (!(await exists(configPath))) {
    throw new ModelLoadError(
      configPath,
      "missing: a Hugging Face model folder needs config.json (with model.safetensors or its index, " +
        "tokenizer.json and tokenizer_config.json); is this the model folder?",
    );
  }
  const config = await readLlamaConfig(configPath);
  const ckpt = await SafetensorsCheckpoint.open(weights);
  return {
    config,
    configSource: configPath,
    reader: safetensorsReader(ckpt),
    format: "safetensors",
    ownTokenizer: () => tokenizerFromJson(`${dir}/tokenizer.json`),
  };
}

async function openGguf(path: string): Promise<OpenedSource> {
  const w = await GgufLlamaWeights.open(path);
  return {
    config: w.config,
    configSource: "its llama.* metadata",
    reader: ggufReader(w),
    format: "gguf",
    ownTokenizer: () => {
      try {
        return Promise.resolve(Tokenizer.fromGgufMetadata(Object.fromEntries(w.file.metadata)));
      } catch (e) {
        return Promise.reject(
          new ModelLoadError(path, `cannot build the tokenizer from tokenizer.ggml.*: ${(e as Error).message}`, {
            cause: e,
          }),
        );
      }
    },
  };
}

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * Loads a model from a Hugging Face folder, a Hub id or a GGUF file onto
 * `backend`: linear weights in NF4, embeddings bf16, norms f32 (see the module
 * notes), with the tokenizer, where it came from, and load time and memory.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using model = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * model.weights.layers.length; // 5
 * model.stats.deviceBytes; // 195792: NF4 linears, bf16 embeddings, f32 norms
 * ```
 */
export function loadModel(
  source: string,
  backend: Backend,
  options?: LoadOptions & { tokenizer?: string },
): Promise<LoadedModel<Tokenizer>>;
export function loadModel(
  source: string,
  backend: Backend,
  options: LoadOptions,
): Promise<LoadedModel<Tokenizer | null>>;
export async function loadModel(
  source: string,
  backend: Backend,
  options: LoadOptions = {},
): Promise<LoadedModel<Tokenizer | null>> {
  const start = performance.now();
  const path = SAFETENSORS_PATH.test(source) && await exists(source)
    ? source
    : await resolveModel(source, { progress: options.progress, ...options.hub });
  const opened = /\.gguf$/i.test(path)
    ? await openGguf(path)
    : SAFETENSORS_PATH.test(path)
    ? await openFolder(dirname(path), path)
    : await openFolder(path);
  using reader = opened.reader;
  const { config } = opened;
  const slots = llamaTensorSlots(config);
  checkTensors(reader, slots, config, opened.configSource);

  // The tokenizer comes first: a missing one fails before any device memory is spent.
  const tokenizer = options.tokenizer === false
    ? null
    : typeof options.tokenizer === "string"
    ? await tokenizerFromJson(options.tokenizer)
    : await opened.ownTokenizer();
  if (tokenizer !== null && tokenizer.vocabSize > config.vocabSize) {
    throw new ModelLoadError(
      typeof options.tokenizer === "string" ? options.tokenizer : path,
      `the tokenizer has ids up to ${tokenizer.vocabSize - 1} but the embeddings have ${config.vocabSize} rows: ` +
        "this tokenizer does not belong to this model",
    );
  }

  options.checkConfig?.(config);

  const sourceBytes = slots.reduce((n, s) => n + reader.sourceBytes(s.name), 0);
  const { weights, hostPeakBytes, rssPeakBytes, dtypes } = await loadWeights(
    reader,
    slots,
    config,
    backend,
    options,
    `loading ${basename(path)}`,
  );
  backend.sync();
  return {
    config,
    tokenizer,
    weights,
    source: {
      input: source,
      path,
      format: opened.format,
      fromHub: path !== source,
      weightsPath: reader.path,
      dtypes,
    },
    device: backend.deviceName,
    stats: {
      seconds: (performance.now() - start) / 1000,
      tensors: slots.length,
      sourceBytes,
      hostPeakBytes,
      rssPeakBytes,
      deviceBytes: weights.deviceBytes,
    },
    dispose: () => weights.dispose(),
    [Symbol.dispose]: () => weights.dispose(),
  };
}

function formatCount(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)}B`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(1)}M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)}K`
    : `${n}`;
}

/**
 * A one-paragraph summary of a loaded model for the command line: source,
 * parameters, shape, device memory and load time.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { describeModel, loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using model = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * console.log(describeModel(model));
 * // ../shared/models/stories260K/hf [safetensors: F32 x47]: Llama with 260.0K parameters — 5 layers, hidden 64, ...
 * ```
 */
export function describeModel(model: LoadedModel<Tokenizer | null>): string {
  const c = model.config;
  const w = model.weights;
  const params = parameterCount(c);
  const s = model.source;
  const from = s.fromHub ? `${s.input} (Hub, ${s.path})` : s.path;
  const dtypes = Object.entries(s.dtypes).map(([d, n]) => `${d} x${n}`).join(", ");
  const attention = c.numKvHeads === c.numHeads
    ? `${c.numHeads} heads`
    : `${c.numHeads} query / ${c.numKvHeads} key-value heads`;
  const vocab = model.tokenizer
    ? `vocab ${c.vocabSize} (tokenizer ${model.tokenizer.vocabSize})`
    : `vocab ${c.vocabSize}`;
  return `${from} [${s.format}: ${dtypes}]: Llama with ${formatCount(params)} parameters — ${c.numLayers} layers, ` +
    `hidden ${c.hiddenSize}, ${attention} of ${c.headDim}, MLP ${c.intermediateSize}, ${vocab}, ` +
    `${w.tied ? "tied" : "separate"} embeddings and lm_head. On ${model.device}: ${
      formatBytes(model.stats.deviceBytes)
    } ` +
    `(linears ${w.linearDtype === "nf4" ? `NF4 blocks of ${w.blocksize}` : w.linearDtype}, ` +
    `embeddings ${w.embeddings.dtype}, norms ${w.finalNorm.dtype}), ` +
    `loaded in ${model.stats.seconds.toFixed(2)} s holding at most ${formatBytes(model.stats.hostPeakBytes)} ` +
    `of tensor data on the host at once (process RSS peak ${formatBytes(model.stats.rssPeakBytes)}).`;
}
