/**
 * The parsers under fuzz, one target each: its seed corpus, how a case's
 * input is made from it, how the input is parsed (through the same code a
 * file on disk goes through, minus the disk), the error classes a refusal may
 * use and the file names its message must carry. A parse that succeeds is
 * checked for consistency too (accepted garbage is a bug as well).
 *
 * @module
 */

import {
  FLOAT_DTYPES,
  SAFETENSORS_DTYPE_BITS,
  SafetensorsError,
  SafetensorsFile,
} from "../../lib/formats/safetensors.ts";
import { GgufError, GgufFile, GgufLlamaWeights, parseGgufHeader } from "../../lib/formats/gguf.ts";
import { DEQUANTIZABLE } from "../../lib/formats/gguf_quants.ts";
import {
  type LlamaConfig,
  LlamaConfigError,
  parseLlamaConfigText,
  ropeInverseFrequencies,
} from "../../lib/formats/llama_config.ts";
import { AdapterError, parseAdapterConfig, peftScaling, readAdapterWeights } from "../../lib/formats/peft_adapter.ts";
import { Tokenizer } from "../../lib/tokenizer/tokenizer.ts";
import { TokenizerError } from "../../lib/tokenizer/errors.ts";
import { decodeUtf8, parseCsv } from "../../lib/data/csv.ts";
import { DataError } from "../../lib/data/errors.ts";
import { checkGold, examplesFromTable } from "../../lib/data/examples.ts";
import { labelsFromGold } from "../../lib/data/labels.ts";
import type { Rng } from "../reference/random.ts";
import { buildGguf, type BuiltGguf, type GgufSpec } from "./gguf_builder.ts";
import { mutateBytes, truncations } from "./mutate_bytes.ts";
import { mutateCsv } from "./mutate_csv.ts";
import { mutateGguf } from "./mutate_gguf.ts";
import { jsonOffsets, mutateJson } from "./mutate_json.ts";
import { mutateSafetensors, safetensorsOffsets } from "./mutate_safetensors.ts";
import { type ErrorClass, invariant } from "./oracle.ts";
import { packParts, unpackParts } from "./parts.ts";
import {
  type AdapterSeed,
  adapterSeeds,
  configSeeds,
  csvSeeds,
  ggufSeeds,
  safetensorsSeeds,
  type TokenizerSeed,
  tokenizerSeeds,
} from "./seeds.ts";

/** One parser under fuzz. */
export interface FuzzTarget {
  /** Short name (the bench's row, the regression fixture's prefix). */
  readonly name: string;
  /** The classes a refusal may use. */
  readonly errors: readonly ErrorClass[];
  /** The file names a refusal's message may start with. */
  readonly paths: readonly string[];
  /** Builds the seed corpus (once per worker). */
  seeds(): Promise<unknown>;
  /** One case's input, from the corpus and the case's generator. */
  mutate(rng: Rng, corpus: unknown): Uint8Array;
  /** Inputs tried once each before the random cases: the small seeds cut at every interesting offset. */
  sweep(corpus: unknown): Uint8Array[];
  /** Parses the input; resolves when it is accepted, throws when it is refused. */
  run(input: Uint8Array): Promise<void>;
}

/** Declares a target whose corpus has type C. */
function target<C>(t: {
  name: string;
  errors: readonly ErrorClass[];
  paths: readonly string[];
  seeds: () => Promise<C>;
  mutate: (rng: Rng, corpus: C) => Uint8Array;
  sweep: (corpus: C) => Uint8Array[];
  run: (input: Uint8Array) => Promise<void>;
}): FuzzTarget {
  return { ...t, mutate: (rng, corpus) => t.mutate(rng, corpus as C), sweep: (corpus) => t.sweep(corpus as C) };
}

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

/** How many mutations to stack: mostly one or two, sometimes more. */
function stack(rng: Rng): number {
  let k = 1;
  while (k < 8 && rng.next() < 0.4) k++;
  return k;
}

/** Picks a seed, big ones (over 64 KiB) rarely: they cost a copy per case. */
function pickSized<T>(rng: Rng, seeds: readonly T[], size: (s: T) => number): T {
  const small = seeds.filter((s) => size(s) <= 1 << 16);
  return small.length > 0 && (small.length === seeds.length || rng.next() < 0.92) ? pick(rng, small) : pick(rng, seeds);
}

const lossy = new TextDecoder(); // what Deno.readTextFile does with bytes that are not UTF-8

/** Text that touches every tokenizer path: added tokens, digits, accents, emoji, byte-fallback spellings. */
const SAMPLE = "Hello wörld 123456 <|begin_of_text|>  <s>\tÉté 🙂 ▁hi<0x41> <|endoftext|>user\r\n";

/** Encodes and decodes SAMPLE: every id must be a token and decode must take them back. */
function roundTrip(tok: Tokenizer): void {
  for (const addSpecialTokens of [true, false]) {
    const ids = tok.encode(SAMPLE, { addSpecialTokens });
    for (const id of ids) {
      invariant(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `encode gave id ${id} of ${tok.vocabSize}`);
    }
    tok.decode(ids);
    tok.decode(ids, { skipSpecialTokens: true });
  }
}

/** A parsed config's sizes fit together, and its RoPE frequencies are finite and positive. */
function checkConfig(c: LlamaConfig): void {
  invariant(["LlamaForCausalLM", "MistralForCausalLM"].includes(c.architecture), `architecture ${c.architecture}`);
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === "number" && k !== "rmsNormEps" && k !== "ropeTheta") {
      invariant(Number.isSafeInteger(v) && v >= 0, `${k} = ${v}`);
    }
  }
  invariant(
    c.numHeads % c.numKvHeads === 0 && c.headDim % 2 === 0,
    `heads ${c.numHeads}/${c.numKvHeads}, ${c.headDim}`,
  );
  invariant(c.rmsNormEps > 0 && c.ropeTheta > 0, "eps and theta must be positive");
  // Wider heads exist in no model; RoPE tables (and KV caches) sized from them are gigabytes.
  invariant(c.headDim <= 1024, `head_dim ${c.headDim}`);
  const freqs = ropeInverseFrequencies(c);
  invariant(freqs.every((f) => Number.isFinite(f) && f > 0), `RoPE frequencies ${freqs.slice(0, 4)}`);
}

// ---- safetensors ---------------------------------------------------------------------------------------------

const SAFETENSORS_PATH = "fuzz/model.safetensors";

const safetensors = target({
  name: "safetensors",
  errors: [SafetensorsError],
  paths: [SAFETENSORS_PATH],
  seeds: safetensorsSeeds,
  // The small files cut at every byte (the mutators cut the real ones at their boundaries).
  sweep: (seeds) => seeds.filter((b) => b.length <= 4096).flatMap((b) => truncations(b)),
  mutate: (rng, seeds) => {
    let bytes = pickSized(rng, seeds, (s) => s.length);
    for (let k = stack(rng); k > 0; k--) bytes = mutateSafetensors(rng, bytes);
    return bytes;
  },
  run: async (input) => {
    using f = await SafetensorsFile.fromBytes(SAFETENSORS_PATH, input);
    let budget = 1 << 20; // values read per case: enough for every small file, a part of stories260K
    for (const t of f.tensors.values()) {
      invariant(t.offset >= 8 && t.offset + t.byteLength <= input.length, `${t.name} lies outside the file`);
      const numel = t.shape.reduce((a, b) => a * b, 1);
      invariant(numel * SAFETENSORS_DTYPE_BITS[t.dtype] === t.byteLength * 8, `${t.name}: shape and bytes disagree`);
      if (budget <= 0) continue;
      budget -= numel;
      if (FLOAT_DTYPES.includes(t.dtype)) invariant((await f.readFloat32(t.name)).length === numel, t.name);
      else invariant((await f.readBytes(t.name)).length === t.byteLength, t.name);
    }
  },
});

// ---- GGUF ----------------------------------------------------------------------------------------------------

const GGUF_PATH = "fuzz/model.gguf";

const gguf = target({
  name: "gguf",
  errors: [GgufError, LlamaConfigError, TokenizerError],
  paths: [GGUF_PATH],
  seeds: async () => (await ggufSeeds()).map((spec): [GgufSpec, BuiltGguf] => [spec, buildGguf(spec)]),
  // Each header field's start and end and each section boundary (not every array element; not stories260K).
  sweep: (seeds) =>
    seeds.filter(([, b]) => b.bytes.length <= 1 << 16).flatMap(([, b]) =>
      truncations(b.bytes, [...b.boundaries, ...b.headerFields.flatMap((f) => [f.offset, f.offset + f.size])])
    ),
  mutate: (rng, seeds) => {
    const [spec, built] = pickSized(rng, seeds, ([, b]) => b.bytes.length);
    return mutateGguf(rng, spec, built);
  },
  run: async (input) => {
    using f = await GgufFile.fromBytes(GGUF_PATH, input);
    invariant(f.dataOffset % f.alignment === 0 && f.dataOffset <= input.length + f.alignment, "data offset");
    for (const t of f.tensors.values()) {
      invariant(t.offset >= f.dataOffset && t.offset + t.byteLength <= input.length, `${t.name} lies outside`);
      invariant(t.numel === t.dims.reduce((a, b) => a * b, 1), `${t.name}: numel`);
    }
    // The header read in pieces (a big file read 4 MiB at a time) must agree with the whole.
    const part = parseGgufHeader(GGUF_PATH, input.subarray(0, input.length >> 1), input.length);
    invariant(part === null || part.tensors.size === f.tensors.size, "a prefix parsed differently");
    const tokenizer = () => {
      if (f.metadata.has("tokenizer.ggml.model")) {
        roundTrip(Tokenizer.fromGgufMetadata(f.metadata, { source: GGUF_PATH }));
      }
    };
    // Odd lengths try the weights first, so a bad tokenizer does not hide them.
    if (input.length % 2 === 0) tokenizer();
    if (f.metadata.get("general.architecture") === "llama") {
      const w = await GgufLlamaWeights.fromFile(f);
      checkConfig(w.config);
      let budget = 1 << 20;
      for (const name of w.names()) {
        const t = w.info(name);
        if ((budget -= t.numel) < 0) break;
        invariant((await w.readFloat32(name)).length === t.numel, name);
      }
    } else {
      for (const t of f.tensors.values()) {
        if (t.numel > 1 << 20) continue;
        if (DEQUANTIZABLE.includes(t.type.name)) invariant((await f.readFloat32(t.name)).length === t.numel, t.name);
        else invariant((await f.readBytes(t.name)).length === t.byteLength, t.name);
      }
    }
    if (input.length % 2 === 1) tokenizer();
  },
});

// ---- tokenizer.json ------------------------------------------------------------------------------------------

const TOKENIZER_PATH = "fuzz/tokenizer.json";
const TOKENIZER_CONFIG_PATH = "fuzz/tokenizer_config.json";

const tokenizer = target({
  name: "tokenizer",
  errors: [TokenizerError],
  paths: [TOKENIZER_PATH, TOKENIZER_CONFIG_PATH],
  seeds: tokenizerSeeds,
  sweep: (seeds) =>
    seeds.filter((s) => s.json.length <= 4096).flatMap((s) =>
      truncations(new TextEncoder().encode(s.json), jsonOffsets(s.json)).map((json) => packParts([json]))
    ),
  mutate: (rng, seeds: TokenizerSeed[]) => {
    const seed = pickSized(rng, seeds, (s) => s.json.length);
    const encode = (s: string) => new TextEncoder().encode(s);
    const r = rng.next();
    let json: Uint8Array = r < 0.8 ? mutateJson(rng, seed.json, stack(rng)) : encode(seed.json);
    let config: Uint8Array | undefined = seed.config === undefined ? undefined : encode(seed.config);
    if (r >= 0.8 && r < 0.95) config = mutateJson(rng, seed.config ?? '{"bos_token": "<s>"}', stack(rng));
    if (r >= 0.95) json = mutateBytes(rng, json);
    return packParts(config === undefined ? [json] : [json, config]);
  },
  run: (input) => {
    const [json, config] = unpackParts(input);
    const tok = Tokenizer.fromText(lossy.decode(json), config && lossy.decode(config), {
      source: TOKENIZER_PATH,
      configSource: TOKENIZER_CONFIG_PATH,
      cacheCapacity: 64,
    });
    roundTrip(tok);
    return Promise.resolve();
  },
});

// ---- CSV -----------------------------------------------------------------------------------------------------

const CSV_PATH = "fuzz/train.csv";
const LABELS = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph", "spam", "ham"];

const csv = target({
  name: "csv",
  errors: [DataError],
  paths: [CSV_PATH],
  seeds: () => Promise.resolve(csvSeeds()),
  sweep: (seeds) => seeds.flatMap((text) => truncations(new TextEncoder().encode(text))),
  mutate: (rng, seeds) => mutateCsv(rng, pick(rng, seeds), stack(rng)),
  run: (input) => {
    const table = parseCsv(decodeUtf8(input, CSV_PATH), CSV_PATH);
    invariant(new Set(table.columns).size === table.columns.length, "repeated columns");
    let line = 1;
    for (const row of table.rows) {
      invariant(row.line > line && row.values.length <= table.columns.length, `row at line ${row.line}`);
      line = row.line;
    }
    // The spam-style seed names its columns text,label; the others title,abstract,label_name.
    const spam = table.columns.includes("text");
    const examples = examplesFromTable(table, {
      textFields: spam ? ["text"] : ["title", "abstract"],
      labelColumn: spam ? "label" : "label_name",
    });
    const multiLabel = table.rows.length % 2 === 1;
    labelsFromGold(examples.flatMap((e) => (e.gold ? [e.gold] : [])), { multiLabel });
    checkGold(examples, LABELS, CSV_PATH, { multiLabel });
    return Promise.resolve();
  },
});

// ---- PEFT adapters -------------------------------------------------------------------------------------------

const ADAPTER_CONFIG_PATH = "fuzz/adapter/adapter_config.json";
const ADAPTER_WEIGHTS_PATH = "fuzz/adapter/adapter_model.safetensors";

const adapter = target({
  name: "adapter",
  errors: [AdapterError, SafetensorsError],
  paths: [ADAPTER_CONFIG_PATH, ADAPTER_WEIGHTS_PATH],
  seeds: adapterSeeds,
  sweep: (seeds) =>
    seeds.flatMap((s) => {
      const config = new TextEncoder().encode(s.config);
      return [
        ...truncations(config, jsonOffsets(s.config)).map((c) => packParts([c, s.weights])),
        ...truncations(s.weights, safetensorsOffsets(s.weights)).map((w) => packParts([config, w])),
      ];
    }),
  mutate: (rng, seeds: AdapterSeed[]) => {
    const seed = pick(rng, seeds);
    const r = rng.next();
    const config = r < 0.55 || r >= 0.95
      ? mutateJson(rng, seed.config, stack(rng))
      : new TextEncoder().encode(seed.config);
    let weights = seed.weights;
    if (r >= 0.55) { for (let k = stack(rng); k > 0; k--) weights = mutateSafetensors(rng, weights); }
    return packParts([config, weights]);
  },
  run: async (input) => {
    const [configBytes, weights] = unpackParts(input);
    const config = parseAdapterConfig(ADAPTER_CONFIG_PATH, lossy.decode(configBytes));
    using file = await SafetensorsFile.fromBytes(ADAPTER_WEIGHTS_PATH, weights);
    const { modules } = await readAdapterWeights(config, file);
    for (const m of modules) {
      invariant(m.a.length === m.r * m.inFeatures && m.b.length === m.outFeatures * m.r, `${m.module} shapes`);
      const s = peftScaling(config, m.module);
      invariant(Number.isFinite(s) && s > 0, `${m.module} scaling ${s}`);
    }
  },
});

// ---- config.json ---------------------------------------------------------------------------------------------

const CONFIG_PATH = "fuzz/config.json";

const config = target({
  name: "config",
  errors: [LlamaConfigError],
  paths: [CONFIG_PATH],
  seeds: configSeeds,
  sweep: (seeds) => seeds.flatMap((text) => truncations(new TextEncoder().encode(text), jsonOffsets(text))),
  mutate: (rng, seeds) => mutateJson(rng, pick(rng, seeds), stack(rng)),
  run: (input) => {
    checkConfig(parseLlamaConfigText(lossy.decode(input), CONFIG_PATH));
    return Promise.resolve();
  },
});

/** Every target, by name. */
export const TARGETS: Readonly<Record<string, FuzzTarget>> = Object.fromEntries(
  [safetensors, gguf, tokenizer, csv, adapter, config].map((t) => [t.name, t]),
);
