/**
 * Every input that ever made a parser fail, kept so the bug stays fixed.
 * Fixtures are the input bytes (tests/fuzz/regressions/<target>-<name>.bin,
 * shrunk by minimize.ts or rebuilt small by hand), each listed here with the
 * bug it caught; the case seeds that found them are listed too (with today's
 * mutators a seed may make a different input, so the bytes are what counts).
 * Recipes rebuild inputs too big to keep (ten thousand nested arrays) and
 * those of bugs found by reading the parsers while writing the fuzzer.
 * tests/fuzz_test.ts replays all three.
 *
 * @module
 */

import { buildGguf, type GgufKvSpec, VT } from "./gguf_builder.ts";
import { packParts } from "./parts.ts";

/** The folder of fixture files. */
export const REGRESSIONS_DIR: URL = new URL("./regressions/", import.meta.url);

/** Fixture file -> the failure it caught, now fixed. */
export const FIXTURES: Readonly<Record<string, string>> = {
  "tokenizer-merge-null.bin": "a null entry of model.merges leaked a TypeError from bpe.ts mergeParts",
  "gguf-rope-freqs-not-positive.bin": "rope_freqs.weight factors of 0 and -1 made RoPE frequencies infinite, negative",
  "csv-c32dde21.bin": "checkGold quoted a 10 kB label cell whole: a 10,660-character error message",
  "adapter-rank-pattern-not-a-regex.bin": 'a rank_pattern key "(" leaked a SyntaxError from new RegExp in peftScaling',
};

/** Case seeds at which the fuzzer found failures: [target, seed, what it found]. */
export const FOUND_AT: readonly (readonly [string, number, string])[] = [
  ["tokenizer", 0xa69da701, "TypeError: Cannot read properties of null (reading 'length') in bpe.ts"],
  ["gguf", 0x4387e620, "invariant: RoPE frequencies Infinity (rope_freqs.weight factor 0)"],
  ["gguf", 0x10cc5613, "invariant: RoPE frequencies negative (rope_freqs.weight factor < 0)"],
  ["csv", 0xc32dde21, "DataError message 10,660 characters long"],
  ["csv", 0x21d4d00f, "a lone CR inside a LF file became a one-field record numbered after the next line"],
  ["adapter", 0x078e6f47, "SyntaxError: Invalid regular expression: /^(.*\\.)?(\\)$/ (rank_pattern key)"],
  ["adapter", 0x754a94f9, "SyntaxError: Invalid regular expression: /^(.*\\.)?([)$/ (rank_pattern key)"],
  ["tokenizer", 0xff66f0bd, "SyntaxError: Invalid regular expression: /xxx…/: too large (a long Split String pattern)"],
];

/**
 * The fixtures in REGRESSIONS_DIR, grouped by target (the file name's prefix).
 *
 * @example
 * ```ts ignore
 * import { readFixtures } from "./regressions.ts";
 * (await readFixtures()).get("csv")?.length;
 * ```
 */
export async function readFixtures(): Promise<Map<string, { file: string; input: Uint8Array }[]>> {
  const byTarget = new Map<string, { file: string; input: Uint8Array }[]>();
  for await (const entry of Deno.readDir(REGRESSIONS_DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".bin")) continue;
    const target = entry.name.slice(0, entry.name.indexOf("-"));
    const list = byTarget.get(target) ?? [];
    list.push({ file: entry.name, input: await Deno.readFile(new URL(entry.name, REGRESSIONS_DIR)) });
    byTarget.set(target, list.sort((a, b) => (a.file < b.file ? -1 : 1)));
  }
  return byTarget;
}

const text = (s: string) => new TextEncoder().encode(s);
const u32 = (key: string, value: number): GgufKvSpec => ({ key, type: VT.U32, value });

/** A Llama GGUF's metadata (hidden 8, 2 heads of 4), with `extra` entries added or replacing. */
function llamaGguf(extra: GgufKvSpec[], tensors: Parameters<typeof buildGguf>[0]["tensors"] = []): Uint8Array {
  const base: GgufKvSpec[] = [
    { key: "general.architecture", type: VT.STRING, value: "llama" },
    u32("llama.block_count", 1),
    u32("llama.embedding_length", 8),
    u32("llama.feed_forward_length", 16),
    u32("llama.attention.head_count", 2),
    u32("llama.vocab_size", 4),
    { key: "llama.attention.layer_norm_rms_epsilon", type: VT.F32, value: 1e-5 },
  ];
  const kvs = [...base.filter((kv) => !extra.some((e) => e.key === kv.key)), ...extra];
  return buildGguf({ version: 3, alignment: 32, kvs, tensors }).bytes;
}

/** A config.json of stories260K's sizes with `changes`. */
function config(changes: Record<string, unknown>): Uint8Array {
  return text(JSON.stringify({
    architectures: ["LlamaForCausalLM"],
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    vocab_size: 512,
    ...changes,
  }));
}

/** A byte-level tokenizer.json with `changes` at its top level. */
function tokenizer(changes: Record<string, unknown>): Uint8Array {
  return packParts([text(JSON.stringify({
    model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] },
    ...changes,
  }))]);
}

/** Inputs rebuilt by code: [target, name, what it caught, the input]. */
export const RECIPES: readonly (readonly [string, string, string, () => Uint8Array])[] = [
  [
    "gguf",
    "arrays nested 12,000 deep",
    "the metadata reader recursed once per level: a stack overflow (RangeError)",
    () => {
      let value: unknown = { elem: VT.U8, items: [1] };
      for (let i = 0; i < 12_000; i++) value = { elem: VT.ARRAY, items: [value] };
      return llamaGguf([{ key: "deep", type: VT.ARRAY, value }]);
    },
  ],
  [
    "gguf",
    "general.alignment NaN",
    "a float alignment passed the power-of-two test (NaN & NaN is 0): tensor offsets became NaN",
    () => llamaGguf([{ key: "general.alignment", type: VT.F32, value: NaN }]),
  ],
  [
    "gguf",
    "tokenizer.ggml.model as a u64",
    "JSON.stringify of the bigint value in the message threw a TypeError",
    () => llamaGguf([{ key: "tokenizer.ggml.model", type: VT.U64, value: 2n ** 60n }]),
  ],
  [
    "gguf",
    "attn_q rows that do not split into heads",
    "unpermuteQK threw a RangeError from inside the Llama view",
    () => llamaGguf([], [{ name: "blk.0.attn_q.weight", dims: [8, 3], type: 0, data: new Uint8Array(96) }]),
  ],
  [
    "gguf",
    "llama.embedding_length 0.5",
    "sizes of the GGUF Llama config were taken as they were: fractions, 0, 2^53",
    () => llamaGguf([{ key: "llama.embedding_length", type: VT.F32, value: 0.5 }]),
  ],
  [
    "safetensors",
    "a header whose JSON error quotes a newline",
    "V8's JSON.parse message quotes the input: the error message spanned two lines",
    () => {
      const header = text('{"a":\n x}');
      const out = new Uint8Array(8 + header.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
      out.set(header, 8);
      return out;
    },
  ],
  [
    "tokenizer",
    "TemplateProcessing.single holding null",
    "item.Sequence of null: a TypeError",
    () =>
      tokenizer({
        post_processor: { type: "TemplateProcessing", single: [null], special_tokens: {} },
      }),
  ],
  [
    "tokenizer",
    "normalizer Sequences nested 20,000 deep",
    "buildNormalizer recursed once per level: a stack overflow (RangeError)",
    () => {
      const open = '{"type":"Sequence","normalizers":[';
      const json = `{"normalizer":${open.repeat(20_000)}${"]}".repeat(20_000)},` +
        '"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}';
      return packParts([text(json)]);
    },
  ],
  [
    "tokenizer",
    "a Split String pattern of 70,000 characters",
    "V8 compiles a RegExp on first use and only then finds it too large: a SyntaxError while encoding",
    () =>
      tokenizer({
        pre_tokenizer: { type: "Split", pattern: { String: "x".repeat(70_000) }, behavior: "Removed", invert: false },
      }),
  ],
  [
    "tokenizer",
    "an added token id of 1e300",
    "new Array(maxId + 1) threw a RangeError (invalid array length)",
    () => tokenizer({ added_tokens: [{ id: 1e300, content: "<s>", special: true }] }),
  ],
  [
    "config",
    'model_type "constructor"',
    "ARCHITECTURES[model_type] found Object.prototype.constructor: the config was accepted",
    () => config({ architectures: undefined, model_type: "constructor" }),
  ],
  [
    "config",
    'architectures [{"toString": 1}]',
    "String() of an object whose toString is not a function: a TypeError",
    () => config({ architectures: [{ toString: 1 }] }),
  ],
  [
    "config",
    'hidden_act {"toString": 0}',
    "the message's template literal called toString: a TypeError",
    () => config({ hidden_act: { toString: 0 } }),
  ],
  [
    "config",
    "head_dim 2^31 - 2",
    "RoPE frequencies allocated head_dim / 2 doubles from the config: 8 GiB, a RangeError",
    () => config({ head_dim: 2 ** 31 - 2 }),
  ],
];
