import assert from "node:assert/strict";
import { AddedTokenMatcher } from "../lib/tokenizer/added.ts";
import { Bpe } from "../lib/tokenizer/bpe.ts";
import { appendByteLevelBytes, BYTE_TO_CHAR, toByteLevel } from "../lib/tokenizer/bytelevel.ts";
import { BoundedCache } from "../lib/tokenizer/cache.ts";
import type { AddedTokenJson, ComponentJson, TokenizerJson } from "../lib/tokenizer/json.ts";
import { buildPreTokenizer, type SplitBehavior, splitOnPattern } from "../lib/tokenizer/pretokenize.ts";
import { compileHfPattern } from "../lib/tokenizer/regex.ts";
import { mergesFromScores } from "../lib/tokenizer/sentencepiece.ts";
import { Tokenizer } from "../lib/tokenizer/tokenizer.ts";
import { Rng } from "./reference/random.ts";

const shared = new URL("../../shared/", import.meta.url);

/** A byte-level tokenizer.json: the 256 byte symbols (id = byte), then each merge's result and `extra` tokens. */
function byteLevel(merges: [string, string][], options: {
  added?: Partial<AddedTokenJson>[];
  extra?: string[];
  ignoreMerges?: boolean;
  normalizer?: ComponentJson;
} = {}): TokenizerJson {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(BYTE_TO_CHAR[b])] = b;
  let next = 256;
  for (const t of [...merges.map(([a, b]) => a + b), ...(options.extra ?? [])]) vocab[t] ??= next++;
  return {
    added_tokens: (options.added ?? []).map((t, i) => ({ id: 1000 + i, content: "", ...t })),
    normalizer: options.normalizer ?? null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
    decoder: { type: "ByteLevel" },
    model: { type: "BPE", vocab, merges: merges.map(([a, b]) => `${a} ${b}`), ignore_merges: options.ignoreMerges },
  };
}

/** A SentencePiece-style tokenizer.json (Llama 2 shape): <unk> <s> </s>, 256 byte tokens, then `pieces`. */
function sentencePiece(pieces: string[], merges: [string, string][], options: {
  byteFallback?: boolean;
  fuseUnk?: boolean;
  unk?: string | null;
} = {}): TokenizerJson {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  pieces.forEach((p, i) => (vocab[p] = 259 + i));
  const special = (id: number, content: string) => ({ id, content, special: true, normalized: false });
  return {
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }],
    },
    pre_tokenizer: null,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
      byte_fallback: options.byteFallback ?? true,
      fuse_unk: options.fuseUnk ?? true,
      unk_token: options.unk === undefined ? "<unk>" : options.unk,
    },
  };
}

/** ids of a byte-level toy: byte values for single characters, vocabulary ids for merged tokens. */
function idsOf(json: TokenizerJson, tokens: string[]): number[] {
  return tokens.map((t) => json.model.vocab[toByteLevel(t)] ?? json.model.vocab[t]);
}

Deno.test("tokenizer: Llama 3 reference_encodings.json, ids with and without BOS, and decodes", async () => {
  const dir = new URL("models/llama3-tokenizer/", shared).pathname;
  const tok = await Tokenizer.fromFile(`${dir}tokenizer.json`, `${dir}tokenizer_config.json`);
  assert.deepEqual([tok.vocabSize, tok.bosId, tok.eosId], [128256, 128000, 128009]);
  const refs = JSON.parse(await Deno.readTextFile(`${dir}reference_encodings.json`)) as {
    text: string;
    ids_no_special: number[];
    ids_with_special: number[];
    decoded: string;
  }[];
  assert.ok(refs.length >= 11);
  for (const r of refs) {
    assert.deepEqual(tok.encode(r.text, { addSpecialTokens: false }), r.ids_no_special, r.text);
    assert.deepEqual(tok.encode(r.text), r.ids_with_special, r.text);
    assert.equal(tok.decode(r.ids_no_special), r.decoded, r.text);
    assert.equal(tok.decode(r.ids_with_special, { skipSpecialTokens: true }), r.decoded, r.text);
  }
  // ignore_merges: " jeho" is one vocabulary token that merging alone would split in three.
  assert.deepEqual(tok.encode(" jeho", { addSpecialTokens: false }), [101503]);
  assert.equal(tok.decode([128000, 9906, 128009]), "<|begin_of_text|>Hello<|eot_id|>");
});

Deno.test("tokenizer: stories260K's tok512.bin as GGUF metadata encodes and decodes like llama2.c", async () => {
  // llama2.c's tokenizer file: max length, then per token {f32 score, i32 length, bytes}; spaces stand for "▁".
  const bin = await Deno.readFile(new URL("models/stories260K/tok512.bin", shared));
  const view = new DataView(bin.buffer);
  const tokens: string[] = [];
  const scores: number[] = [];
  for (let i = 0, at = 4; i < 512; i++) {
    scores.push(view.getFloat32(at, true));
    const len = view.getInt32(at + 4, true);
    tokens.push(new TextDecoder().decode(bin.subarray(at + 8, at + 8 + len)).replaceAll(" ", "▁"));
    at += 8 + len;
  }
  tokens.splice(0, 3, "<unk>", "<s>", "</s>");
  // A Map, a typed array and a bigint, as a GGUF reader may hand them over.
  const tok = Tokenizer.fromGgufMetadata(
    new Map<string, unknown>(Object.entries({
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": tokens,
      "tokenizer.ggml.scores": new Float32Array(scores),
      "tokenizer.ggml.token_type": tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
      "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2n,
    })),
  );
  const ref = JSON.parse(await Deno.readTextFile(new URL("models/stories260K/hf/reference_outputs.json", shared)));
  assert.deepEqual(tok.encode(ref.prompt), ref.prompt_ids_with_bos);
  assert.equal(tok.decode(ref.greedy_continuation_ids), ref.greedy_continuation_text.replaceAll("<0x0A>", "\n"));
  assert.deepEqual([tok.bosId, tok.eosId, tok.vocabSize], [1, 2, 512]);
});

Deno.test("tokenizer: the byte-level spelling equals TextEncoder's bytes mapped through the alphabet, and back", () => {
  const rng = new Rng();
  const ranges = [[0x00, 0x7f], [0x80, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xffff], [0x10000, 0x10ffff]];
  for (let k = 0; k < 300; k++) {
    const text = Array.from({ length: rng.int(0, 12) }, () => {
      const [lo, hi] = ranges[rng.int(0, ranges.length - 1)];
      return String.fromCodePoint(rng.int(lo, hi));
    }).join("");
    const want = Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(BYTE_TO_CHAR[b])).join("");
    assert.equal(toByteLevel(text), want, `${JSON.stringify(text)} (seed ${rng.seed})`);
    const bytes: number[] = [];
    appendByteLevelBytes(want, bytes);
    assert.equal(
      new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array(bytes)),
      text,
      `${JSON.stringify(text)} (seed ${rng.seed})`,
    );
  }
});

Deno.test("tokenizer: heap BPE merges exactly like the plain quadratic loop, long words included", () => {
  const rng = new Rng();
  const letters = ["a", "b", "c", "d", "e"];
  const vocab = new Map(letters.map((l, i) => [l, i]));
  const merges: [string, string][] = [];
  const tokens = [...letters];
  while (merges.length < 40) {
    const a = tokens[rng.int(0, tokens.length - 1)];
    const b = tokens[rng.int(0, tokens.length - 1)];
    if (vocab.has(a + b) || a.length + b.length > 8) continue;
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
    tokens.push(a + b);
  }
  const bpe = new Bpe({ vocab, merges, cacheCapacity: 0 });
  const rank = new Map(merges.map(([a, b], r) => [`${a} ${b}`, r]));
  // Reference: merge the best-ranked adjacent pair, leftmost on ties, until none is left.
  const plain = (word: string): number[] => {
    const syms = [...word];
    for (;;) {
      let best = -1;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = rank.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && (best < 0 || r < rank.get(`${syms[best]} ${syms[best + 1]}`)!)) best = i;
      }
      if (best < 0) return syms.map((s) => vocab.get(s)!);
      syms.splice(best, 2, syms[best] + syms[best + 1]);
    }
  };
  for (const [length, count] of [[1, 20], [2, 20], [3, 20], [7, 20], [30, 20], [200, 20], [1001, 1]]) {
    for (let k = 0; k < count; k++) {
      const word = Array.from({ length }, () => letters[rng.int(0, 4)]).join("");
      const got: number[] = [];
      bpe.tokenize(word, got);
      assert.deepEqual(got, plain(word), `word of ${length} (seed ${rng.seed}): ${word.slice(0, 60)}`);
    }
  }
});

Deno.test("tokenizer: ignore_merges emits a vocabulary word whole; otherwise merges decide", () => {
  // "abc" is a token, but no merge reaches it from a + bc.
  const cases = [
    { ignoreMerges: true, want: ["abc"] },
    { ignoreMerges: false, want: ["a", "bc"] },
  ];
  for (const { ignoreMerges, want } of cases) {
    const json = byteLevel([["b", "c"]], { extra: ["abc"], ignoreMerges });
    const tok = Tokenizer.fromJson(json);
    assert.deepEqual(tok.encode("abc"), idsOf(json, want), `ignore_merges ${ignoreMerges}`);
    assert.equal(tok.decode(tok.encode("abc")), "abc");
  }
});

Deno.test("tokenizer: byte fallback, unknown tokens and decoding of <0xNN> bytes (SentencePiece style)", () => {
  const pieces = ["▁", "h", "i", "▁h", "▁hi", "!"];
  const merges: [string, string][] = [["▁", "h"], ["▁h", "i"]];
  const byte = (b: number) => 3 + b;
  const piece = (p: string) => 259 + pieces.indexOf(p);
  const cases = [
    {
      what: "byte fallback",
      options: {},
      text: "hi 漢!",
      want: [piece("▁hi"), piece("▁"), byte(0xe6), byte(0xbc), byte(0xa2), piece("!")],
    },
    { what: "fused unk", options: { byteFallback: false }, text: "hi漢字!", want: [piece("▁hi"), 0, piece("!")] },
    {
      what: "unfused unk",
      options: { byteFallback: false, fuseUnk: false },
      text: "hi漢字!",
      want: [piece("▁hi"), 0, 0, piece("!")],
    },
    {
      what: "no unk: dropped",
      options: { byteFallback: false, unk: null },
      text: "hi漢字!",
      want: [piece("▁hi"), piece("!")],
    },
  ];
  for (const c of cases) {
    const tok = Tokenizer.fromJson(sentencePiece(pieces, merges, c.options));
    assert.deepEqual(tok.encode(c.text), c.want, c.what);
  }
  const tok = Tokenizer.fromJson(sentencePiece(pieces, merges));
  assert.equal(tok.decode(tok.encode("hi 漢!")), "hi 漢!");
  // Bytes that are not UTF-8 decode to one U+FFFD each; the unk token decodes to its text.
  assert.equal(tok.decode([byte(0xe6), byte(0xbc), piece("h"), byte(0x41)]), "\ufffd\ufffdhA");
  assert.equal(tok.decode([1, piece("▁hi"), 2], { skipSpecialTokens: true }), "hi");
  assert.equal(tok.decode([1, piece("▁hi"), 0]), "<s> hi<unk>");
});

Deno.test("tokenizer: added tokens are matched before BPE with their lstrip, rstrip, single_word and normalized flags", () => {
  const added: Partial<AddedTokenJson>[] = [
    { content: "<eot>", special: true, normalized: false },
    { content: "<L>", lstrip: true, normalized: false },
    { content: "<R>", rstrip: true, normalized: false },
    { content: "word", single_word: true, normalized: false },
    { content: "<a>", normalized: false },
    { content: "<a><b>", normalized: false },
    { content: "hello", normalized: true },
  ];
  const json = byteLevel([["w", "o"], ["r", "d"], ["wo", "rd"]], {
    added,
    normalizer: { type: "Lowercase" },
  });
  const tok = Tokenizer.fromJson(json);
  const [eot, L, R, word, a, ab, hello] = [1000, 1001, 1002, 1003, 1004, 1005, 1006];
  const cases: { text: string; want: (number | string)[] }[] = [
    { text: "x<eot>y", want: ["x", eot, "y"] },
    { text: "x  <L>y", want: ["x", L, "y"] },
    { text: "x<R>  y", want: ["x", R, "y"] },
    { text: "x word y", want: ["x", " ", word, " ", "y"] },
    { text: "xwordy", want: ["x", "word", "y"] },
    { text: "<a><b><a>", want: [ab, a] },
    { text: "HeLLo!", want: [hello, "!"] },
  ];
  for (const { text, want } of cases) {
    const ids = want.flatMap((w) => (typeof w === "number" ? [w] : idsOf(json, [w])));
    assert.deepEqual(tok.encode(text), ids, text);
  }
  assert.equal(tok.decode(tok.encode("x<eot>y<a>"), { skipSpecialTokens: true }), "xy<a>");
  assert.ok(tok.isSpecial(eot) && !tok.isSpecial(a));
});

Deno.test("tokenizer: empty text, and text the normalizer empties, give no ids even with a prefix space", () => {
  const json: TokenizerJson = {
    ...byteLevel([]),
    normalizer: { type: "Strip", strip_left: true, strip_right: true },
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, use_regex: true },
  };
  const tok = Tokenizer.fromJson(json);
  const cases = [
    { text: "", want: [] },
    { text: "   ", want: [] },
    { text: " x ", want: idsOf(json, [" ", "x"]) },
  ];
  for (const { text, want } of cases) assert.deepEqual(tok.encode(text), want, JSON.stringify(text));
});

Deno.test("tokenizer: the BOS/EOS template comes from post_processor, overridden by tokenizer_config", () => {
  const json: TokenizerJson = {
    ...byteLevel([], { added: [{ content: "<s>", special: true }, { content: "</s>", special: true }] }),
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1000], tokens: ["<s>"] } },
    },
  };
  const x = "x".charCodeAt(0);
  const cases = [
    { config: undefined, want: [1000, x] },
    { config: { bos_token: "<s>", eos_token: "</s>", add_bos_token: false }, want: [x] },
    { config: { bos_token: "<s>", eos_token: "</s>", add_eos_token: true }, want: [1000, x, 1001] },
  ];
  for (const { config, want } of cases) {
    const tok = Tokenizer.fromJson(json, config);
    assert.deepEqual(tok.encode("x"), want, JSON.stringify(config));
    assert.deepEqual(tok.encode("x", { addSpecialTokens: false }), [x]);
    assert.equal(tok.bosId, 1000);
  }
});

Deno.test("tokenizer: Metaspace prepends ▁ to the whole input (first) or every stretch between added tokens (always)", () => {
  const pieces = ["▁", "h", "i", "▁h", "▁hi", "hi"];
  const json = sentencePiece(pieces, [["▁", "h"], ["▁h", "i"], ["h", "i"]]);
  const piece = (p: string) => 259 + pieces.indexOf(p);
  const cases = [
    { scheme: "first", text: "hi<s>hi", want: [piece("▁hi"), 1, piece("hi")] },
    { scheme: "always", text: "hi<s>hi", want: [piece("▁hi"), 1, piece("▁hi")] },
    { scheme: "never", text: "hi<s>hi", want: [piece("hi"), 1, piece("hi")] },
    { scheme: "first", text: "<s>hi", want: [1, piece("hi")] },
  ];
  for (const { scheme, text, want } of cases) {
    const tok = Tokenizer.fromJson({
      ...json,
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: scheme, split: false },
    });
    assert.deepEqual(tok.encode(text), want, `${scheme}: ${text}`);
  }
});

Deno.test("tokenizer: Split behaviours and Digits cut text as HF's pre-tokenizers do", () => {
  const cases: { behavior: SplitBehavior; invert?: boolean; want: string[] }[] = [
    { behavior: "Isolated", want: ["a", "-", "b", "-", "-", "c"] },
    { behavior: "Removed", want: ["a", "b", "c"] },
    { behavior: "MergedWithPrevious", want: ["a-", "b-", "-", "c"] },
    { behavior: "MergedWithNext", want: ["a", "-b", "-", "-c"] },
    { behavior: "Contiguous", want: ["a", "-", "b", "--", "c"] },
    { behavior: "Removed", invert: true, want: ["-", "-", "-"] },
  ];
  for (const { behavior, invert, want } of cases) {
    const out: string[] = [];
    splitOnPattern("a-b--c", /-/gu, behavior, invert ?? false, out);
    assert.deepEqual(out, want, `${behavior}${invert ? " inverted" : ""}`);
  }
  for (const [individual, want] of [[true, ["ab", "1", "2", "3", "c"]], [false, ["ab", "123", "c"]]] as const) {
    const out: string[] = [];
    buildPreTokenizer({ type: "Digits", individual_digits: individual })!("ab123c", true, out);
    assert.deepEqual(out, want, `individual_digits ${individual}`);
  }
});

Deno.test("tokenizer: HF regexes keep Oniguruma's \\s (U+0085 is space, U+FEFF is not)", () => {
  const re = compileHfPattern(" ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+|\\p{L}+");
  assert.deepEqual("a \ufeffb".match(re), ["a", " \ufeff", "b"]);
  assert.deepEqual("a\u0085\u0085b".match(re), ["a", "\u0085", "\u0085", "b"]);
});

Deno.test("tokenizer: the word cache returns the same ids, stays bounded and can be turned off", () => {
  const json = byteLevel([["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"]]);
  const text = "hello hello world hello";
  const cached = Tokenizer.fromJson(json, undefined, { cacheCapacity: 2 });
  const uncached = Tokenizer.fromJson(json, undefined, { cacheCapacity: 0 });
  const first = cached.encode(text);
  assert.deepEqual(cached.encode(text), first);
  assert.deepEqual(uncached.encode(text), first);
  assert.deepEqual(first, idsOf(json, ["hello", " ", "hello", " ", "w", "o", "r", "l", "d", " ", "hello"]));
  assert.equal(cached.cachedWords, 2);
  assert.equal(uncached.cachedWords, 0);
  const c = new BoundedCache<string, number>(2);
  c.set("a", 1), c.set("b", 2), c.set("c", 3);
  assert.deepEqual([c.get("a"), c.get("b"), c.get("c"), c.size], [undefined, 2, 3, 2]);
});

Deno.test("tokenizer: merges recovered from SentencePiece scores rank by score, then longer left part", () => {
  assert.deepEqual(mergesFromScores(["a", "b", "c", "ab", "bc", "abc"], [0, 0, 0, -1, -1, -2]), [
    ["a", "b"],
    ["b", "c"],
    ["ab", "c"],
    ["a", "bc"],
  ]);
});

Deno.test("tokenizer: leftmost-longest matching of added tokens over a trie", () => {
  const t = (id: number, content: string) => ({
    id,
    content,
    singleWord: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const m = new AddedTokenMatcher([t(1, "ab"), t(2, "abcd"), t(3, "bc")]);
  assert.deepEqual(m.split("xabcdabc", true), [{ text: "x", atStart: true }, { id: 2 }, { id: 1 }, {
    text: "c",
    atStart: false,
  }]);
});

Deno.test("tokenizer: bad input is refused with a message that names the problem", () => {
  const ok = byteLevel([["a", "b"]]);
  const cases: { what: string; run: () => unknown; message: RegExp }[] = [
    {
      what: "model type",
      run: () => Tokenizer.fromJson({ ...ok, model: { ...ok.model, type: "Unigram" } }),
      message: /model type "Unigram"/,
    },
    {
      what: "pre-tokenizer",
      run: () => Tokenizer.fromJson({ ...ok, pre_tokenizer: { type: "Whitespace" } }),
      message: /pre-tokenizer "Whitespace" is not supported/,
    },
    {
      what: "merge of unknown token",
      run: () => Tokenizer.fromJson({ ...ok, model: { ...ok.model, merges: ["a zz"] } }),
      message: /merge 0 \("a" "zz"\) uses "zz"/,
    },
    {
      what: "decode id",
      run: () => Tokenizer.fromJson(ok).decode([5, 99999]),
      message: /id 99999 \(position 1\) is not a token/,
    },
    {
      what: "GGUF model",
      run: () => Tokenizer.fromGgufMetadata({ "tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": [] }),
      message: /tokenizer.ggml.model is "bert"/,
    },
    {
      what: "GGUF pre",
      run: () =>
        Tokenizer.fromGgufMetadata({
          "tokenizer.ggml.model": "gpt2",
          "tokenizer.ggml.pre": "qwen9",
          "tokenizer.ggml.tokens": ["a"],
          "tokenizer.ggml.merges": [],
        }),
      message: /tokenizer.ggml.pre is "qwen9"/,
    },
    {
      what: "add_bos without bos",
      run: () => Tokenizer.fromJson(ok, { add_bos_token: true }),
      message: /sets add_bos_token but names no bos_token/,
    },
  ];
  for (const c of cases) assert.throws(c.run, c.message, c.what);
});

Deno.test("tokenizer: a GGUF llama-bpe vocabulary gets Llama 3's split and ignore_merges", () => {
  const tokens = [
    ...Array.from({ length: 256 }, (_, b) => String.fromCharCode(BYTE_TO_CHAR[b])),
    "bc",
    "abc",
    "<|eot|>",
  ];
  const tok = Tokenizer.fromGgufMetadata({
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.pre": "llama-bpe",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": tokens.map((t) => (t === "<|eot|>" ? 3 : 1)),
    "tokenizer.ggml.merges": ["b c"],
    "tokenizer.ggml.eos_token_id": 258,
  });
  // Llama 3's split keeps up to three digits together; "abc" comes out whole.
  assert.deepEqual(tok.encode("abc12345<|eot|>"), [257, 49, 50, 51, 52, 53, 258]);
  assert.equal(tok.decode([257, 258], { skipSpecialTokens: true }), "abc");
});
