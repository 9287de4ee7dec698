// Our tokenizer against HF `tokenizers` (tokenizer_oracle.py builds the references): token ids with
// and without special tokens, and decodes, must be identical on Llama 3's tokenizer, SmolLM2's (from
// its GGUF, both as transformers writes its tokenizer.json and from the GGUF metadata) and
// stories260K's SentencePiece model (as transformers converts it, and in Llama 2's legacy shape,
// also from GGUF-style metadata). The texts: every title and abstract of arxiv5's validation and
// test splits, hand-picked edge cases, and random mixes of scripts, emoji, digits, whitespace runs,
// code and special tokens.
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { Tokenizer } from "../../lib/tokenizer/tokenizer.ts";
import { Rng } from "../reference/random.ts";
import { type OracleOutputs, runOracle } from "./harness.ts";

const shared = new URL("../../../shared/", import.meta.url);
const rng = new Rng();

interface Case {
  /** Shown in failures. */
  name: string;
  /** The oracle case whose files and reference ids it uses. */
  reference: string;
  /** Builds ours from the files the oracle wrote into `dir`. */
  build: (dir: string) => Promise<Tokenizer>;
  /** Byte-level BPE decodes back to exactly the input. */
  roundTrips: boolean;
}

const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const CASES: Case[] = [
  {
    name: "Llama 3 tokenizer.json",
    reference: "llama3",
    build: () => {
      const dir = new URL("models/llama3-tokenizer/", shared).pathname;
      return Tokenizer.fromFile(`${dir}tokenizer.json`, `${dir}tokenizer_config.json`);
    },
    roundTrips: true,
  },
  {
    name: "SmolLM2 tokenizer.json (transformers, from the GGUF)",
    reference: "smollm2",
    build: (dir) => Tokenizer.fromFile(`${dir}/tokenizer.json`),
    roundTrips: true,
  },
  {
    name: "SmolLM2 GGUF metadata",
    reference: "smollm2-gguf",
    build: async (dir) => Tokenizer.fromGgufMetadata(await json(`${dir}/gguf_metadata.json`)),
    roundTrips: true,
  },
  {
    name: "stories260K tokenizer.json (transformers' converter)",
    reference: "stories260k",
    build: (dir) => Tokenizer.fromFile(`${dir}/tokenizer.json`),
    roundTrips: false,
  },
  {
    name: "stories260K legacy tokenizer.json (Llama 2 shape)",
    reference: "stories260k-legacy",
    build: (dir) => Tokenizer.fromFile(`${dir}/tokenizer.json`, `${dir}/tokenizer_config.json`),
    roundTrips: false,
  },
  {
    name: "stories260K GGUF-style metadata (llama)",
    reference: "stories260k-legacy",
    build: async (dir) => Tokenizer.fromGgufMetadata(await json(`${dir}/gguf_metadata.json`)),
    roundTrips: false,
  },
];

function arxivTexts(): string[] {
  const texts: string[] = [];
  for (const split of ["validation", "test"]) {
    const csv = Deno.readTextFileSync(new URL(`data/arxiv5/${split}.csv`, shared));
    for (const row of parse(csv, { columns: true }) as { title: string; abstract: string }[]) {
      texts.push(row.title, row.abstract);
    }
  }
  return texts;
}

const HAND = [
  "",
  " ",
  "a",
  "  leading spaces",
  "trailing spaces   ",
  "\n",
  " \n ",
  "multiple   inner    spaces",
  "tab\tseparated\tvalues",
  "line\r\nbreaks\rand\n\n\nruns",
  "<|begin_of_text|>Hello",
  "Hello<|eot_id|>",
  "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
  "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  "<s>x</s>",
  "<s> spaced </s>",
  " <s>",
  "<unk><unk>",
  "<|endoftext|><|endoftext|>",
  "<|im_start",
  "<0x41><0xE2>",
  "it's, IT'S, we'll, They'RE, o'clock, x'D",
  "it'ſt",
  // Vocabulary words that BPE merging would not reach: Llama 3's ignore_merges emits them whole.
  "Tato jeho nhanh dikkat milyon .:.:.:.:.:.:.:.: mektedir",
  "\ufeffstarts with a byte order mark",
  "1234567890 12 123 1234 3.14159 1,000,000 ٣٤٥٦ １２３ ²³ ½ Ⅻ",
  "a\u0085b a \u0085\u0085b \ufeffx \u00a0 y \u2028\u2028z \u3000\u3000w",
  "zero\u200bwidth\u200djoin",
  "é (e + combining acute: e\u0301)",
  "👨‍👩‍👧‍👦 🇫🇷 👍🏽 ❤️ 🏳️‍🌈",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
  "    def f(x):\n        return x ** 2\n",
  "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$",
];

const POOLS: readonly (readonly string[])[] = [
  ["the", "The", "model", "Transformer", "naïve", "café", "Über", "straße", "I'm", "it's", "WE'LL", "o'clock", "ſ"],
  [
    "漢字仮名交じり文",
    "한국어 텍스트",
    "русский текст",
    "ελληνικά",
    "עברית",
    "العربية",
    "हिन्दी",
    "ภาษาไทย",
    "tiếng Việt",
  ],
  ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🧑‍💻", "🤖", "✨", "🏳️‍🌈", "\u{1F600}\u{1F601}"],
  ["3.14159", "1,000,000", "٣٤٥", "１２３", "²³", "½", "Ⅻ", "0x1F", "1e-9", "2024-11-25"],
  [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2028", "\u0085", "\ufeff", "\u2003"],
  [
    "def f(x):\n    return x**2\n",
    "for (let i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    '#include <stdio.h>\nint main(){printf("%d\\n", 42);}',
    "SELECT * FROM t WHERE a<>b;",
    "$\\alpha_{i}^{2} + \\frac{1}{2}$",
    '<div class="x">&amp;</div>',
  ],
  ["<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<0x41>"],
  [".", ",", "!?", "...", "—", "–", "«»", "“quoted”", "'", "''", "(", ")", "[]", "{}", "@#$%^&*", "~", "\\", "/"],
];

/** Random mixes: 1..12 parts from the pools (or digit runs), joined by nothing or whitespace. */
function syntheticTexts(n: number): string[] {
  const texts: string[] = [];
  for (let k = 0; k < n; k++) {
    const parts: string[] = [];
    for (let p = rng.int(1, 12); p > 0; p--) {
      const pool = rng.int(0, POOLS.length);
      if (pool === POOLS.length) parts.push(Array.from({ length: rng.int(1, 20) }, () => rng.int(0, 9)).join(""));
      else parts.push(POOLS[pool][rng.int(0, POOLS[pool].length - 1)]);
      if (rng.next() < 0.5) parts.push(rng.next() < 0.7 ? " " : POOLS[4][rng.int(0, POOLS[4].length - 1)]);
    }
    texts.push(parts.join(""));
  }
  return texts;
}

const texts = [...arxivTexts(), ...HAND, ...syntheticTexts(400)];
let oracle: Promise<{ dir: string; out: OracleOutputs }> | undefined;

/** Runs tokenizer_oracle.py once for every case of this file. */
function reference(): Promise<{ dir: string; out: OracleOutputs }> {
  oracle ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "lorac-tokenizer-oracle-" });
    const cases = [...new Set(CASES.map((c) => c.reference))];
    const out = await runOracle("tokenizer_oracle.py", { texts, cases, workdir: dir }, {});
    return { dir, out };
  })();
  return oracle;
}

/** The reference's ids of each text for `mode`, split by the lengths it wrote. */
function referenceIds(out: OracleOutputs, reference: string, mode: "plain" | "special"): Int32Array[] {
  const flat = out.get(`${reference}.${mode}.ids`, "i32");
  const lengths = out.get(`${reference}.${mode}.lengths`, "i32");
  const rows: Int32Array[] = [];
  for (let i = 0, at = 0; i < lengths.length; at += lengths[i++]) rows.push(flat.subarray(at, at + lengths[i]));
  return rows;
}

const show = (text: string) => JSON.stringify(text.length > 120 ? text.slice(0, 120) + "…" : text);

Deno.test("tokenizer oracle: ids and decodes equal HF tokenizers", async (t) => {
  assert.ok(texts.length >= 2000, `only ${texts.length} texts; the oracle needs at least 2000`);
  const { dir, out } = await reference();
  try {
    for (const c of CASES) {
      await t.step(c.name, async () => {
        const tok = await c.build(`${dir}/${c.reference}`);
        const decoded = out.params[c.reference] as Record<string, string[]>;
        const failures: string[] = [];
        for (const mode of ["plain", "special"] as const) {
          const want = referenceIds(out, c.reference, mode);
          texts.forEach((text, i) => {
            const got = tok.encode(text, { addSpecialTokens: mode === "special" });
            if (got.length !== want[i].length || got.some((id, k) => id !== want[i][k])) {
              failures.push(`${mode} ${show(text)}: ours [${got}] HF [${want[i]}]`);
              return;
            }
            const text2 = tok.decode(got, { skipSpecialTokens: mode === "special" });
            if (text2 !== decoded[`${mode}.decoded`][i]) {
              failures.push(
                `decode ${mode} ${show(text)}: ours ${show(text2)} HF ${show(decoded[`${mode}.decoded`][i])}`,
              );
            } else if (c.roundTrips && mode === "plain" && text2 !== text) {
              failures.push(`round trip ${show(text)} gave ${show(text2)}`);
            }
          });
        }
        assert.equal(
          failures.length,
          0,
          `${c.name}: ${failures.length} differences over ${texts.length} texts (seed ${rng.seed}):\n` +
            failures.slice(0, 8).join("\n"),
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
