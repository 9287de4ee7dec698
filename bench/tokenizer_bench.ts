/**
 * Tokenizer throughput on arxiv5's titles and abstracts (validation and test
 * splits), ours against HF `tokenizers` in the same run, without special
 * tokens. Ours is one thread; HF is timed on one thread (encode per text)
 * and on every core (encode_batch). "cold" is the first pass of a fresh
 * tokenizer (empty word cache), "warm" the best later pass. One-thread
 * rates are per CPU second of the process (steadier than the wall clock on
 * a shared machine); encode_batch is per wall-clock second.
 *
 *   deno run -A bench/tokenizer_bench.ts     side by side with HF (Python: $LORAC_ORACLE_PYTHON
 *                                            or .oracle-venv/bin/python, made by tests/oracle/setup.sh)
 *   deno bench -A bench/tokenizer_bench.ts   ours only, Llama 3
 *
 * @module
 */

import { parse } from "csv-parse/sync";
import process from "node:process";
import { Tokenizer } from "../lib/tokenizer/tokenizer.ts";

const shared = new URL("../../shared/", import.meta.url);
const llama3Dir = new URL("models/llama3-tokenizer/", shared).pathname;
const REPS = 3;

/** Titles and abstracts of arxiv5's validation and test splits, read in place. */
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

/** CPU seconds (user + system) this process spends in `fn`. */
function seconds(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1e6;
}

/** The cases, by the name tokenizer_oracle.py gives them, and where their tokenizer.json lies. */
const CASES = [
  { key: "llama3", name: "Llama 3 (byte-level, ignore_merges)", path: () => `${llama3Dir}tokenizer.json` },
  {
    key: "smollm2",
    name: "SmolLM2-135M (byte-level, from its GGUF)",
    path: (dir: string) => `${dir}/smollm2/tokenizer.json`,
  },
  {
    key: "stories260k",
    name: "stories260K (SentencePiece BPE)",
    path: (dir: string) => `${dir}/stories260k/tokenizer.json`,
  },
];

interface Timing {
  tokens: number;
  load: number;
  cold: number;
  warm: number;
  batch?: number;
}

function timeOurs(specText: string, texts: string[]): Timing {
  const load = seconds(() => Tokenizer.fromJson(JSON.parse(specText)));
  let tokens = 0;
  const tok = Tokenizer.fromJson(JSON.parse(specText));
  const pass = () => {
    tokens = 0;
    for (const t of texts) tokens += tok.encode(t, { addSpecialTokens: false }).length;
  };
  const cold = seconds(pass);
  let warm = Infinity;
  for (let r = 0; r < REPS; r++) warm = Math.min(warm, seconds(pass));
  return { tokens, load, cold, warm };
}

async function oraclePython(): Promise<string> {
  const python = Deno.env.get("LORAC_ORACLE_PYTHON") ?? new URL("../.oracle-venv/bin/python", import.meta.url).pathname;
  if (!(await Deno.stat(python).then(() => true, () => false))) {
    throw new Error(
      `no Python for HF tokenizers at ${python}: run \`bash tests/oracle/setup.sh\` or set LORAC_ORACLE_PYTHON`,
    );
  }
  return python;
}

async function main(): Promise<void> {
  const texts = arxivTexts();
  const python = await oraclePython();
  const dir = await Deno.makeTempDir({ prefix: "lorac-tokenizer-bench-" });
  try {
    const params = `${dir}/params.json`;
    await Deno.writeTextFile(
      params,
      JSON.stringify({ texts, cases: CASES.map((c) => c.key), workdir: dir, reps: REPS }),
    );
    const out = await new Deno.Command(python, {
      args: [new URL("tokenizer_hf.py", import.meta.url).pathname, params],
      env: { TRANSFORMERS_VERBOSITY: "error", PYTHONDONTWRITEBYTECODE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`tokenizer_hf.py failed:\n${new TextDecoder().decode(out.stderr).slice(-3000)}`);
    const hf = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      tokenizers: string;
      threads: number;
      results: Record<string, Timing>;
    };
    console.log(
      `${texts.length} arxiv5 texts; HF tokenizers ${hf.tokenizers} (batch on ${hf.threads} threads), Deno ${Deno.version.deno}`,
    );
    console.log(
      "tokens per CPU s: ours (1 thread) | HF (1 thread) | HF encode_batch (per wall s) | ours/HF 1 thread; " +
        "load CPU s: ours | HF",
    );
    const rate = (tokens: number, s: number) => `${(tokens / s / 1e6).toFixed(2)}M`;
    for (const c of CASES) {
      const ours = timeOurs(await Deno.readTextFile(c.path(dir)), texts);
      const ref = hf.results[c.key];
      const same = ours.tokens === ref.tokens ? "" : `  (token counts differ: ours ${ours.tokens}, HF ${ref.tokens})`;
      console.log(
        `${c.name}: ${ref.tokens} tokens\n` +
          `  cold  ${rate(ours.tokens, ours.cold)} | ${rate(ref.tokens, ref.cold)} | - | ${
            (ref.cold / ours.cold).toFixed(2)
          }x\n` +
          `  warm  ${rate(ours.tokens, ours.warm)} | ${rate(ref.tokens, ref.warm)} | ${
            rate(ref.tokens, ref.batch!)
          } | ` +
          `${(ref.warm / ours.warm).toFixed(2)}x\n` +
          `  load  ${ours.load.toFixed(2)} | ${ref.load.toFixed(2)}${same}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
} else {
  const texts = arxivTexts();
  const tok = await Tokenizer.fromFile(`${llama3Dir}tokenizer.json`);
  const tokens = texts.reduce((n, t) => n + tok.encode(t, { addSpecialTokens: false }).length, 0);
  Deno.bench({
    name: `Llama 3 encode of ${texts.length} arxiv5 texts (${tokens} tokens; tokens/s = ${tokens} / time)`,
    n: 5,
    warmup: 1,
    fn: () => {
      for (const t of texts) tok.encode(t, { addSpecialTokens: false });
    },
  });
}
