/**
 * Structure-aware GGUF mutators: they change the description of a file
 * (metadata value types and values, arrays nested deep or holding the wrong
 * elements, llama.* sizes of 0 / -1 / 2^53, tokenizer.ggml.* lists that
 * disagree; tensors with swapped or misaligned offsets, unknown ggml types,
 * huge or zero dimensions, duplicate names; version, magic, alignment), write
 * it, and then aim byte-level damage at the integer fields (counts, lengths,
 * offsets) and boundaries the writer reports.
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";
import {
  buildGguf,
  type BuiltGguf,
  type GgufArraySpec,
  type GgufKvSpec,
  type GgufSpec,
  type GgufTensorSpec,
  VT,
} from "./gguf_builder.ts";
import { INTERESTING_U64, mutateBytes } from "./mutate_bytes.ts";

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

const NUMBERS = [0, -1, 1, 2, 3, 7, 1.5, 2 ** 31, 2 ** 32 - 1, 2 ** 53, NaN, Infinity, -Infinity, 1e-30, 0.5];
const STRINGS = ["gpt2", "llama", "bert", "", "smollm", "llama-bpe", "default", "qwen9", "linear", "yarn", "none"];
const KEYS = [
  "general.alignment",
  "llama.vocab_size",
  "llama.attention.key_length",
  "llama.rope.scaling.type",
  "llama.rope.scaling.factor",
  "tokenizer.ggml.add_bos_token",
  "tokenizer.ggml.add_eos_token",
  "tokenizer.ggml.padding_token_id",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.scores",
  "tokenizer.ggml.pre",
  "general.architecture",
];
const GGML_IDS = [0, 1, 2, 3, 4, 5, 6, 8, 12, 13, 14, 16, 30, 31, 39, 40, 255, 2 ** 31, 2 ** 32 - 1];

/** A value of any metadata type, for any key. */
function anyValue(rng: Rng): { type: number; value: unknown } {
  const type = rng.int(0, 12);
  if (type === VT.STRING) return { type, value: pick(rng, STRINGS) };
  if (type === VT.ARRAY) return { type, value: { elem: rng.int(0, 12), items: [1, 2, 3] } };
  if (type === VT.U64 || type === VT.I64) return { type, value: pick(rng, INTERESTING_U64) };
  return { type, value: pick(rng, NUMBERS) };
}

/** An array's items changed: cut, grown, of the wrong element type, nested deep, or one very long string. */
function mutateArray(rng: Rng, value: unknown): GgufArraySpec {
  // A value whose type an earlier round changed to ARRAY is not an array spec yet.
  const a = typeof value === "object" && value !== null && "items" in value
    ? value as GgufArraySpec
    : { elem: VT.U8, items: [] };
  const items = [...a.items];
  switch (rng.int(0, 5)) {
    case 0:
      return { elem: a.elem, items: items.slice(0, rng.int(0, items.length)) };
    case 1:
      return { elem: pick(rng, [VT.STRING, VT.U8, VT.F32, VT.I32, VT.U64, VT.BOOL, VT.ARRAY, 13, 99]), items };
    case 2: { // nested arrays: a parser must bound its recursion
      let v: GgufArraySpec = a;
      for (let i = rng.next() < 0.5 ? rng.int(2, 12) : rng.int(100, 30_000); i > 0; i--) {
        v = { elem: VT.ARRAY, items: [v] };
      }
      return v;
    }
    case 3:
      if (items.length > 0) items[rng.int(0, items.length - 1)] = "▁".repeat(rng.int(1000, 50_000));
      return { elem: a.elem, items };
    case 4:
      if (items.length > 0) items.splice(rng.int(0, items.length - 1), 0, ...items.slice(0, rng.int(1, 4)));
      return { elem: a.elem, items };
    default:
      if (items.length > 0) items[rng.int(0, items.length - 1)] = pick(rng, [...NUMBERS, ...STRINGS]);
      return { elem: a.elem, items };
  }
}

function mutateKvs(rng: Rng, kvs: GgufKvSpec[]): void {
  const i = rng.int(0, Math.max(0, kvs.length - 1));
  const kv = kvs[i];
  switch (rng.int(0, 7)) {
    case 0:
      if (kv) kvs[i] = { ...kv, type: pick(rng, [...Array(13).keys(), 13, 255, 2 ** 32 - 1]) };
      return;
    case 1:
    case 2:
      if (!kv) return;
      if (kv.type === VT.ARRAY) kvs[i] = { ...kv, value: mutateArray(rng, kv.value) };
      else if (kv.type === VT.STRING) kvs[i] = { ...kv, value: pick(rng, STRINGS) };
      else {kvs[i] = {
          ...kv,
          value: kv.type === VT.U64 || kv.type === VT.I64 ? pick(rng, INTERESTING_U64) : pick(rng, NUMBERS),
        };}
      return;
    case 3:
      kvs.splice(i, 1);
      return;
    case 4:
      if (kv) kvs.splice(rng.int(0, kvs.length), 0, rng.next() < 0.5 ? kv : { ...kv, ...anyValue(rng) });
      return;
    case 5:
      if (kv) kvs[i] = { ...kv, key: pick(rng, [kv.key + " ", kv.key.toUpperCase(), "", "a\nb", pick(rng, KEYS)]) };
      return;
    default:
      kvs.splice(rng.int(0, kvs.length), 0, { key: pick(rng, KEYS), ...anyValue(rng) });
  }
}

function mutateTensors(rng: Rng, tensors: GgufTensorSpec[]): void {
  if (tensors.length === 0) return;
  const i = rng.int(0, tensors.length - 1);
  const t = tensors[i];
  const other = tensors[rng.int(0, tensors.length - 1)];
  switch (rng.int(0, 7)) {
    case 0: { // swap offsets (both placed explicitly, so the rest keep theirs)
      let next = 0;
      const placed = tensors.map((x) => {
        const offset = x.offset ?? next;
        next = Math.ceil((Number(offset) + x.data.length) / 32) * 32;
        return offset;
      });
      tensors.forEach((x, k) => (tensors[k] = { ...x, offset: placed[k] }));
      const j = tensors.indexOf(other);
      tensors[i] = { ...tensors[i], offset: placed[j] };
      tensors[j] = { ...tensors[j], offset: placed[i] };
      return;
    }
    case 1:
      tensors[i] = { ...t, type: pick(rng, GGML_IDS) };
      return;
    case 2: {
      const dims = [...t.dims];
      const v = pick(rng, [0n, 1n, 2n, 31n, 33n, 4096n, ...INTERESTING_U64]);
      const r = rng.next();
      if (r < 0.3) dims.push(v);
      else if (r < 0.5) dims.pop();
      else dims[rng.int(0, Math.max(0, dims.length - 1))] = v;
      tensors[i] = { ...t, dims };
      return;
    }
    case 3:
      tensors[i] = { ...t, offset: pick(rng, [1, 16, 31, 33, 2 ** 40, ...INTERESTING_U64]) };
      return;
    case 4:
      tensors[i] = {
        ...t,
        name: pick(rng, [other.name, "", "blk.0.attn_qkv.weight", t.name + "\n", "blk.99.attn_q.weight"]),
      };
      return;
    case 5:
      tensors.splice(i, 1);
      return;
    case 6:
      tensors.splice(i, 0, { ...t });
      return;
    default:
      tensors[i] = { ...t, data: t.data.subarray(0, rng.int(0, t.data.length)) };
  }
}

/**
 * A mutated GGUF file from `spec` (not changed): 1 to 3 structural changes,
 * then, often, byte-level damage aimed at the written file's integer fields
 * and boundaries. `built` is `spec` already written, for byte-only cases.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { buildGguf } from "./gguf_builder.ts";
 * import { mutateGguf } from "./mutate_gguf.ts";
 * const spec = { version: 3, kvs: [], tensors: [], alignment: 32 };
 * mutateGguf(new Rng(2), spec, buildGguf(spec)).length > 0;
 * ```
 */
export function mutateGguf(rng: Rng, spec: GgufSpec, built: BuiltGguf): Uint8Array {
  let out: BuiltGguf = built;
  if (rng.next() < 0.7) {
    const kvs = [...spec.kvs];
    const tensors = [...spec.tensors];
    const s: GgufSpec = { ...spec, kvs, tensors };
    for (let k = rng.int(1, 3); k > 0; k--) {
      const r = rng.next();
      if (r < 0.45) mutateKvs(rng, kvs);
      else if (r < 0.85) mutateTensors(rng, tensors);
      else if (r < 0.93) s.version = pick(rng, [0, 1, 2, 4, 0x03000000, 0x02000000, 2 ** 32 - 1]);
      else if (r < 0.96) s.magic = pick(rng, ["GGML", "gguf", "GGU", "GGUFGGUF", ""]);
      else s.alignment = pick(rng, [1, 8, 16, 64, 4096]);
    }
    out = buildGguf(s);
    if (rng.next() < 0.7) return out.bytes;
  }
  let bytes = out.bytes;
  for (let k = rng.int(1, 2); k > 0; k--) bytes = mutateBytes(rng, bytes, out);
  return bytes;
}
