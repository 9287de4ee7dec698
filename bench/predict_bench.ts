/**
 * Prediction throughput: lorac (NF4 base, KV cache) against transformers +
 * PEFT on the same prompts with the same LoRA adapter, in one run, with
 * SmolLM2-135M-Instruct (the Q4_1 GGUF of lib/model/default_model.ts;
 * transformers dequantizes it).
 *
 *   deno task bench:predict                          the first 500 rows of arxiv5 test.csv
 *   deno task bench:predict --n 40 --batch_size 8 --adapter build/bench/accuracy/run/best
 *   deno task bench:predict --n 40 --base_dtype f32  lorac on the dequantized base too: a parity check
 *   deno task bench:predict --compute_dtype bf16     lorac's NF4 base multiplies in bf16 (AMX, AVX512-BF16)
 *
 * Four ways, each in its own process (so each peak RSS is its own), on the
 * first --n rows of ../shared/data/arxiv5/test.csv under the seed's
 * inference prompt (lib/data/prompts.ts, texts cut to --max_seq_length):
 *
 * - lorac generate: predict() with the seed's greedy decoding;
 * - lorac score: predict() ranking the labels by log-probability;
 * - torch fp32: transformers' batched greedy generate with the PEFT adapter,
 *   on the prompt ids lorac decoded (bench/torch_predict.py), --batch_size
 *   prompts at a time, left-padded, with lorac's max_new_tokens;
 * - torch bf16: the same in bfloat16, skipped when its longest prompts take
 *   over BF16_MAX_RATIO times fp32's ms/example (a CPU without bf16
 *   instructions emulates it).
 *
 * The adapter is --adapter (a folder `lorac train` wrote, e.g. by
 * bench:accuracy), else a short training run here: r=16 on the first
 * TRAIN_ROWS rows of train.csv, one epoch (cheap; it learns the answer
 * format, barely the task). Only decoding is timed on every side (not
 * loading). Accuracy is a sanity check, and so are the agreement columns:
 * with --base_dtype f32 lorac generate and torch fp32 run the same numbers
 * and should give the same answer on nearly every example. With the default
 * NF4 base they differ by NF4's rounding of the weights, which flips the
 * labels an adapter is unsure of (most of them, for the one trained here).
 * The table goes to stdout, the figures to --out (default
 * bench/results/predict.json).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { stringify } from "csv-stringify/sync";
import { buildCpu } from "../cuda/build.ts";
import { readCsv } from "../lib/data/csv.ts";
import { DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS, labelSet, readExamples } from "../lib/data/examples.ts";
import { smollm2Gguf } from "../lib/model/default_model.ts";
import { COMPUTE_DTYPES, type ComputeDType } from "../lib/backend/backend.ts";
import { oneOf } from "../cli/options.ts";
import type { DecodeMode } from "../lib/predict/decode.ts";
import { train } from "../lib/train/trainer.ts";
import type { LoracPredictConfig, PredictSideReport } from "./lorac_predict.ts";
import { run, torchPython } from "./peak.ts";

const DATA = new URL("../../shared/data/arxiv5/", import.meta.url).pathname;
/** Rows of train.csv the bench's own adapter trains on, and how. */
const TRAIN_ROWS = 40;
const TRAIN = { loraR: 16, loraAlpha: 32, learningRate: 1e-3, numEpochs: 1, batchTokens: 2048 };
/** bf16 runs in full only when its probe is at most this many times slower per example than fp32. */
const BF16_MAX_RATIO = 4;
/** Prompts in the bf16 probe. */
const BF16_PROBE = 2;

const FLAGS = {
  n: { type: "string", default: "500" },
  threads: { type: "string" },
  batch_size: { type: "string", default: "8" },
  batch_tokens: { type: "string", default: "4096" },
  max_seq_length: { type: "string", default: "512" },
  base_dtype: { type: "string", default: "nf4" },
  compute_dtype: { type: "string", default: "f32" },
  adapter: { type: "string" },
  out: { type: "string" },
} as const;

interface Args {
  n: number;
  threads: number;
  batchSize: number;
  batchTokens: number;
  maxSeqLength: number;
  baseDtype: "nf4" | "f32" | "bf16";
  computeDtype: ComputeDType;
  adapter?: string;
  out: string;
}

function parseFlags(args: string[]): Args {
  const { values: f } = parseArgs({ args, options: FLAGS });
  const int = (k: keyof typeof FLAGS, fallback?: number) => {
    const v = f[k] === undefined ? fallback : Number(f[k]);
    if (!Number.isInteger(v) || v! < 1) throw new RangeError(`--${k} ${f[k]}: give a positive integer`);
    return v!;
  };
  const baseDtype = f.base_dtype;
  if (baseDtype !== "nf4" && baseDtype !== "f32" && baseDtype !== "bf16") {
    throw new RangeError(`--base_dtype ${baseDtype}: give nf4, f32 or bf16`);
  }
  return {
    n: int("n"),
    threads: int("threads", navigator.hardwareConcurrency),
    batchSize: int("batch_size"),
    batchTokens: int("batch_tokens"),
    maxSeqLength: int("max_seq_length"),
    baseDtype,
    computeDtype: oneOf("--compute_dtype", COMPUTE_DTYPES)(f.compute_dtype),
    adapter: f.adapter,
    out: f.out ?? new URL("results/predict.json", import.meta.url).pathname,
  };
}

/** Writes the first `n` data rows of ../shared/data/arxiv5/`name` to `path`. */
async function writeHead(name: string, n: number, path: string): Promise<void> {
  const table = await readCsv(`${DATA}${name}`);
  if (table.rows.length < n) throw new RangeError(`--n ${n}: ${DATA}${name} has only ${table.rows.length} rows`);
  await Deno.writeTextFile(path, stringify([table.columns, ...table.rows.slice(0, n).map((r) => r.values)]));
}

/** Runs one side's script with its config; its JSON line. */
async function side(cmd: string, args: string[], config: object): Promise<PredictSideReport> {
  return JSON.parse(await run(cmd, [...args, JSON.stringify(config)]));
}

/** A way's figures, as the table and the JSON show them. */
interface Row {
  name: string;
  skipped?: string;
  seconds?: number;
  examplesPerSecond?: number;
  msPerExample?: number;
  promptTokensPerSecond?: number;
  peakRssMiB?: number;
  accuracy?: number;
  invalid?: number;
  /** Share of examples with the same label as lorac generate. */
  sameLabel?: number;
  /** Share of examples with the same generated text as lorac generate (generating ways). */
  sameAnswer?: number;
  /** Examples per second over torch fp32's (lorac ways). */
  speedVsTorch?: number;
  /** Peak RSS over torch fp32's (lorac ways). */
  rssVsTorch?: number;
}

const share = (n: number, pred: (i: number) => boolean) =>
  Array.from({ length: n }, (_, i) => i).filter(pred).length / n;
const fmt = (x: number | undefined, digits: number) => (x === undefined ? "" : x.toFixed(digits));

async function main(): Promise<void> {
  const args = parseFlags(Deno.args);
  await buildCpu({ quiet: true });
  const gguf = await smollm2Gguf();
  const python = await torchPython();
  const tmp = await Deno.makeTempDir({ prefix: "lorac-predict-bench-" });
  try {
    await writeHead("test.csv", args.n, `${tmp}/test.csv`);
    const options = { textFields: DEFAULT_TEXT_FIELDS, labelColumn: DEFAULT_LABEL_COLUMN };
    const labels = labelSet(await readExamples(`${DATA}test.csv`, options));
    const gold = (await readExamples(`${tmp}/test.csv`, options)).map((e) => e.gold);

    let adapter = args.adapter;
    if (adapter === undefined) {
      adapter = `${tmp}/adapter`;
      await writeHead("train.csv", TRAIN_ROWS, `${tmp}/train.csv`);
      console.error(`training an adapter on the first ${TRAIN_ROWS} rows of train.csv ...`);
      const trained = await train({
        ...TRAIN,
        basePath: tmp,
        valFile: null,
        labels,
        outputDir: adapter,
        baseModelName: gguf,
        maxSeqLength: args.maxSeqLength,
        device: "cpu",
        numThreads: args.threads,
        reportTo: "none",
        progress: false,
      });
      console.error(`trained ${trained.steps} steps in ${trained.seconds.toFixed(0)} s, loss ${trained.trainLoss}`);
    }

    const reports: [string, PredictSideReport][] = [];
    const script = (name: string) => new URL(name, import.meta.url).pathname;
    const prompts = `${tmp}/prompts.json`;
    for (const decode of ["generate", "score"] as DecodeMode[]) {
      console.error(`lorac ${decode}: ${args.n} examples ...`);
      const config: LoracPredictConfig = {
        gguf,
        adapter,
        data: tmp,
        labels,
        decode,
        baseDtype: args.baseDtype,
        computeDtype: args.computeDtype,
        threads: args.threads,
        maxSeqLength: args.maxSeqLength,
        batchTokens: args.batchTokens,
        resultsDir: `${tmp}/results-${decode}`,
        promptsOut: decode === "generate" ? prompts : undefined,
      };
      reports.push([
        `lorac ${decode} ${args.baseDtype}${args.computeDtype === "bf16" ? ", bf16 compute" : ""}`,
        await side(Deno.execPath(), ["run", "-A", script("lorac_predict.ts")], config),
      ]);
    }
    const [, generated] = reports[0];
    const job: { prompts: number[][]; max_new_tokens: number } = JSON.parse(await Deno.readTextFile(prompts));
    const torchSide = async (variant: string, probe: object): Promise<PredictSideReport> => {
      if (python === null) return { skipped: "no Python with torch (run tests/oracle/setup.sh)" };
      console.error(`torch+PEFT ${variant}: ${args.n} examples ...`);
      const config = { gguf, adapter, prompts, variant, threads: args.threads, batch_size: args.batchSize, ...probe };
      const report = await side(python, [script("torch_predict.py")], config);
      if ("skipped" in report) console.error(`torch+PEFT ${variant}: skipped: ${report.skipped}`);
      return report;
    };
    const fp32 = await torchSide("fp32", {});
    reports.push(["torch+PEFT fp32", fp32]);
    reports.push([
      "torch+PEFT bf16",
      "skipped" in fp32
        ? { skipped: "fp32 did not run, so there is no speed to hold the bf16 probe to" }
        : await torchSide("bf16", {
          probe: BF16_PROBE,
          probe_limit_ms: (BF16_MAX_RATIO * 1000 * fp32.seconds) / args.n,
        }),
    ]);

    // The table.
    const promptTokens = job.prompts.reduce((n, p) => n + p.length, 0);
    if ("skipped" in generated) throw new Error("lorac generate did not run");
    const rows: Row[] = reports.map(([name, r]) => {
      if ("skipped" in r) return { name, skipped: r.skipped };
      const row: Row = {
        name,
        seconds: r.seconds,
        examplesPerSecond: args.n / r.seconds,
        msPerExample: (1000 * r.seconds) / args.n,
        promptTokensPerSecond: promptTokens / r.seconds,
        peakRssMiB: r.maxrss_bytes / 2 ** 20,
        accuracy: share(args.n, (i) => r.preds[i] === gold[i]),
        invalid: r.preds.filter((p) => p === null).length,
        sameLabel: share(args.n, (i) => r.preds[i] === generated.preds[i]),
      };
      if (r.answers[0] !== null) row.sameAnswer = share(args.n, (i) => r.answers[i] === generated.answers[i]);
      if (name.startsWith("lorac") && !("skipped" in fp32)) {
        row.speedVsTorch = fp32.seconds / r.seconds;
        row.rssVsTorch = r.maxrss_bytes / fp32.maxrss_bytes;
      }
      return row;
    });
    console.log(
      `\nSmolLM2-135M-Instruct (Q4_1 GGUF, dequantized; lorac's base ${args.baseDtype}, torch's as the way says) + LoRA adapter ` +
        `${args.adapter ?? `trained here (r=${TRAIN.loraR}, ${TRAIN_ROWS} rows, 1 epoch)`}; ` +
        `the first ${args.n} rows of arxiv5 test.csv, ${promptTokens} prompt tokens ` +
        `(mean ${(promptTokens / args.n).toFixed(0)}, max_seq_length ${args.maxSeqLength}), ` +
        `max_new_tokens ${job.max_new_tokens}, ${args.threads} threads; ` +
        `lorac batch_tokens ${args.batchTokens}, torch batch_size ${args.batchSize}\n`,
    );
    console.log(
      "| way | examples/s | ms/example | prompt tokens/s | peak RSS MiB | ours/torch fp32 speed | ours/torch fp32 RSS | " +
        "accuracy | invalid | same label as lorac generate | same answer as lorac generate |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of rows) {
      if (r.skipped) {
        console.log(`| ${r.name} | skipped: ${r.skipped} | | | | | | | | | |`);
        continue;
      }
      const x = (v: number | undefined) => (v === undefined ? "" : `${v.toFixed(2)}x`);
      console.log(
        `| ${r.name} | ${fmt(r.examplesPerSecond, 2)} | ${fmt(r.msPerExample, 0)} | ` +
          `${fmt(r.promptTokensPerSecond, 0)} | ${fmt(r.peakRssMiB, 0)} | ${x(r.speedVsTorch)} | ${
            x(r.rssVsTorch)
          } | ` +
          `${fmt(r.accuracy, 3)} | ${r.invalid} | ${fmt(r.sameLabel, 3)} | ${fmt(r.sameAnswer, 3)} |`,
      );
    }
    const out = args.out;
    await Deno.mkdir(out.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await Deno.writeTextFile(
      out,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          model: gguf,
          adapter: args.adapter ?? { trainedHere: { ...TRAIN, rows: TRAIN_ROWS } },
          args,
          labels,
          promptTokens,
          maxNewTokens: job.max_new_tokens,
          ways: rows,
        },
        null,
        2,
      ) + "\n",
    );
    console.log(`\nThe figures: ${out}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await main();
