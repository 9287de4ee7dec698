/**
 * LoRA training throughput: lorac (NF4 base) against PyTorch + PEFT on the
 * same packed batches of arxiv5 texts, in one run, with SmolLM2-135M-Instruct
 * (the Q4_1 GGUF of lib/model/default_model.ts; transformers dequantizes it).
 *
 *   deno task bench:train                                  1 warm-up + 2 measured steps of 2048 tokens
 *   deno task bench:train --steps 2 --budget 1024 --variants lorac,fp32,nf4 --threads 2 --out /tmp/t.json
 *   deno task bench:train --compute_dtype bf16             lorac's NF4 base multiplies in bf16 (AMX, AVX512-BF16)
 *
 * Variants (`--variants`, default all): lorac (NF4 base), fp32, bf16
 * (autocast) and nf4 (bitsandbytes Linear4bit, where its CPU path trains);
 * each runs in its own process (bench/lorac_train.ts, bench/torch_train.py),
 * so its peak RSS (VmHWM, ru_maxrss) is its own. bf16 autocast on a CPU
 * without bf16 instructions takes minutes a step, so there it runs
 * `--bf16-steps` (default 1) measured steps and no warm-up; the table says so.
 *
 * Both sides: LoRA r=16, alpha=32 on all seven projections, no dropout,
 * AdamW (torch defaults, lr 1e-4), one micro-batch per step. The batches
 * come from a fixed subset, the first rows of ../shared/data/arxiv5/train.csv
 * in file order under the seed's prompt (max_seq_length 512): each step takes,
 * in file order, every unused example that still fits its `--budget` tokens,
 * looking at most LOOKAHEAD examples ahead, so each step is filled with whole
 * examples to within a few tokens. The batches go to both sides as token ids
 * in one file: identical tokens, packed end to end without padding on both
 * sides (lorac: cu_seqlens; torch: one row whose position_ids restart at
 * every example, which transformers turns into a per-example causal mask).
 * MFU: the model FLOPs of lib/train/flops.ts (the same for every variant;
 * torch's dense masked attention over the whole row is not counted) per
 * second over `--threads` cores' FMA peak (bench/peak_flops.cpp, per
 * core-second; bf16 for bf16 where the CPU has AVX512-BF16), by the wall
 * clock and by the CPU-seconds of the variant's threads: the second holds
 * when other work loads the machine, the first does not. The first step's
 * loss (before any update: the base model's) is printed for every variant:
 * lorac and bitsandbytes NF4 quantize alike and must agree; fp32 and bf16
 * show what NF4 costs. The table goes to stdout, the
 * figures to bench/results/train.json (or `--out`).
 *
 * @module
 */

import { COMPUTE_DTYPES, type ComputeDType } from "../lib/backend/backend.ts";
import { oneOf } from "../cli/options.ts";
import { buildCpu } from "../cuda/build.ts";
import { DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS, labelSet, readExamples } from "../lib/data/examples.ts";
import { PromptTemplate } from "../lib/data/prompts.ts";
import { GgufLlamaWeights } from "../lib/formats/gguf.ts";
import { smollm2Gguf } from "../lib/model/default_model.ts";
import { LINEAR_NAMES, linearShape } from "../lib/model/weights.ts";
import { Tokenizer } from "../lib/tokenizer/tokenizer.ts";
import { attentionPairs, type BatchWork, trainingFlops } from "../lib/train/flops.ts";
import { batchOf } from "../lib/train/packing.ts";
import { buildSftExample, type SftExample } from "../lib/train/sft_examples.ts";
import type { SideConfig, SideReport, StepReport } from "./lorac_train.ts";
import { measurePeak, type Peak, run, torchPython } from "./peak.ts";

const TRAIN_CSV = new URL("../../shared/data/arxiv5/train.csv", import.meta.url).pathname;
const DEFAULT_OUT = new URL("results/train.json", import.meta.url).pathname;
const LORA = { r: 16, alpha: 32 };
const LR = 1e-4;
const MAX_SEQ_LENGTH = 512;
/** Unused examples a step looks through for one that fits its remaining room. */
const LOOKAHEAD = 64;
/** lorac's and bitsandbytes' first-step losses further apart than this (relative) mean a bug on one side. */
const NF4_LOSS_TOLERANCE = 0.02;

/** The variants, in the order they run by default: the slowest (bf16) last. */
const VARIANTS = {
  lorac: "lorac NF4",
  fp32: "torch+PEFT fp32",
  nf4: "torch+PEFT bnb NF4",
  bf16: "torch+PEFT bf16 autocast",
} as const;
type Variant = keyof typeof VARIANTS;

interface Args {
  steps: number;
  warmup: number;
  budget: number;
  threads: number;
  bf16Steps: number;
  /** What lorac's NF4 base multiplies in. */
  computeDtype: ComputeDType;
  variants: Variant[];
  out: string;
}

const USAGE = "flags: --steps N --warmup N --budget TOKENS --threads N --bf16-steps N --compute_dtype f32|bf16 " +
  `--variants ${Object.keys(VARIANTS).join(",")} --out FILE`;

function parseArgs(args: string[]): Args {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    if (!args[i].startsWith("--") || args[i + 1] === undefined) {
      throw new Error(`bench/train_bench.ts: cannot read ${args.slice(i).join(" ")}; ${USAGE}`);
    }
    flags.set(args[i], args[i + 1]);
  }
  const int = (flag: string, fallback: number, min: number): number => {
    const raw = flags.get(flag);
    flags.delete(flag);
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${flag} needs an integer >= ${min}, got ${raw}`);
    return v;
  };
  const parsed = {
    steps: int("--steps", 2, 1),
    warmup: int("--warmup", 1, 0),
    budget: int("--budget", 2048, 64),
    threads: int("--threads", navigator.hardwareConcurrency, 1),
    bf16Steps: int("--bf16-steps", 1, 1),
  };
  const variants = (flags.get("--variants") ?? Object.keys(VARIANTS).join(",")).split(",");
  for (const v of variants) {
    if (!(v in VARIANTS)) throw new Error(`--variants: unknown variant ${v}; pick from ${Object.keys(VARIANTS)}`);
  }
  const out = flags.get("--out") ?? DEFAULT_OUT;
  const computeDtype = oneOf("--compute_dtype", COMPUTE_DTYPES)(flags.get("--compute_dtype") ?? "f32");
  flags.delete("--variants");
  flags.delete("--out");
  flags.delete("--compute_dtype");
  if (flags.size > 0) throw new Error(`bench/train_bench.ts: unknown flag ${[...flags.keys()][0]}; ${USAGE}`);
  return { ...parsed, computeDtype, variants: variants as Variant[], out };
}

/**
 * `count` batches of whole examples, each filled up to `budget` tokens: a
 * step walks the unused rows of train.csv in file order and takes every one
 * that still fits, until it has looked at LOOKAHEAD rows that did not.
 */
async function benchBatches(tokenizer: Tokenizer, eosId: number, budget: number, count: number) {
  const rows = await readExamples(TRAIN_CSV, { textFields: DEFAULT_TEXT_FIELDS, labelColumn: DEFAULT_LABEL_COLUMN });
  const format = PromptTemplate.seed(labelSet(rows));
  const options = { format, tokenizer, eosId, maxSeqLength: Math.min(MAX_SEQ_LENGTH, budget) };
  // Tokenized on first use: a run needs the first few hundred rows only.
  const examples: SftExample[] = [];
  const example = (i: number) => examples[i] ??= buildSftExample(rows[i].text, rows[i].gold as string, options);
  const used = new Set<number>();
  const batches: SftExample[][] = [];
  let first = 0;
  while (batches.length < count) {
    while (used.has(first)) first++;
    const batch: SftExample[] = [];
    let room = budget;
    let misses = 0;
    for (let i = first; i < rows.length && room > 0 && misses < LOOKAHEAD; i++) {
      if (used.has(i)) continue;
      if (example(i).tokens.length > room) {
        misses++;
        continue;
      }
      batch.push(example(i));
      used.add(i);
      room -= example(i).tokens.length;
    }
    if (batch.length === 0 || (room > 0 && misses < LOOKAHEAD)) {
      throw new Error(`${TRAIN_CSV}: too few rows to fill ${count} steps of ${budget} tokens; lower --steps`);
    }
    batches.push(batch);
  }
  return batches;
}

/** A variant's measured figures. */
interface Measured {
  variant: Variant;
  name: string;
  measuredSteps: number;
  tokens: number;
  msPerStep: number;
  /** Median CPU seconds (all threads) a step: the figure a loaded machine does not inflate. */
  cpuSecondsPerStep: number;
  tokensPerSecond: number;
  peakRssMiB: number;
  tokensPerCpuSecond: number;
  /** Model FLOPs per wall second over the peak of `threads` cores. */
  mfu: number;
  /** Model FLOPs per CPU-second over one core's peak: the efficiency load on the machine does not change. */
  cpuMfu: number;
  /** Loss of step 1's batch before any update: the base model's loss, the same on every side. */
  firstLoss: number;
  losses: number[];
  seconds: number[];
  loadSeconds: number;
}

/** A variant that did not run, and why. */
interface Skipped {
  variant: Variant;
  name: string;
  skipped: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

/** Runs one variant's process; its report. */
async function runSide(variant: Variant, config: SideConfig, python: string | null): Promise<SideReport> {
  const arg = JSON.stringify(config);
  if (variant === "lorac") {
    const script = new URL("lorac_train.ts", import.meta.url).pathname;
    return JSON.parse(await run(Deno.execPath(), ["run", "-A", script, arg]));
  }
  if (python === null) return { skipped: "no Python with torch (run tests/oracle/setup.sh)" };
  return JSON.parse(await run(python, [new URL("torch_train.py", import.meta.url).pathname, arg]));
}

/**
 * GFLOP/s of one core-second for the variant's arithmetic: measured per
 * CPU-second, so other work on the machine does not lower it (the wall-clock
 * figure of all threads does).
 */
function corePeak(variant: Variant, peak: Peak): number {
  return variant === "bf16" && peak.bf16_gflops_core > 0 ? peak.bf16_gflops_core : peak.fp32_gflops_core;
}

const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;

function printTable(rows: (Measured | Skipped)[], ours: Measured | undefined, args: Args, fill: number[], peak: Peak) {
  console.log(
    `\nSmolLM2-135M-Instruct, LoRA r=${LORA.r} alpha=${LORA.alpha} on all seven projections; ` +
      `${args.steps} measured steps after ${args.warmup} warm-up, each ${args.budget} tokens of whole examples ` +
      `packed without padding (fill ${fmt(100 * Math.min(...fill))}-${fmt(100 * Math.max(...fill))}%); ` +
      `${args.threads} threads; peak ${fmt(peak.fp32_gflops_core)} GFLOP/s fp32 a core (${peak.isa}). ` +
      "CPU columns count CPU-seconds of all the variant's threads (busy-waiting included): " +
      "they hold on a loaded machine, where the wall-clock ones do not.\n",
  );
  console.log(
    "| variant | steps | ms/step (median) | tokens/s | CPU s/step | tokens/CPU-s | peak RSS MiB | MFU | MFU (CPU) | " +
      "first-step loss | speed lorac ÷ this | speed (CPU) lorac ÷ this | RSS lorac ÷ this |",
  );
  console.log(`|---|${"---:|".repeat(12)}`);
  for (const r of rows) {
    if ("skipped" in r) {
      console.log(`| ${r.name} | skipped: ${r.skipped} |${" |".repeat(11)}`);
      continue;
    }
    const cells = [
      r.name,
      r.measuredSteps,
      fmt(r.msPerStep, 0),
      fmt(r.tokensPerSecond),
      fmt(r.cpuSecondsPerStep),
      fmt(r.tokensPerCpuSecond),
      fmt(r.peakRssMiB, 0),
      `${fmt(100 * r.mfu)}%`,
      `${fmt(100 * r.cpuMfu)}%`,
      fmt(r.firstLoss, 4),
      ours ? ratio(ours.tokensPerSecond, r.tokensPerSecond) : "",
      ours ? ratio(ours.tokensPerCpuSecond, r.tokensPerCpuSecond) : "",
      ours ? ratio(ours.peakRssMiB, r.peakRssMiB) : "",
    ];
    console.log(`| ${cells.join(" | ")} |`);
  }
}

/**
 * The first-step losses against lorac's, printed. Only bitsandbytes NF4
 * quantizes the weights as lorac does, so only it must agree (to within
 * NF4_LOSS_TOLERANCE); fp32 and bf16 keep the GGUF's dequantized weights and
 * show what NF4 quantization costs.
 */
function checkLosses(rows: (Measured | Skipped)[], ours: Measured) {
  const checks = rows.flatMap((r) => {
    if ("skipped" in r || r.variant === "lorac") return [];
    const relative = (r.firstLoss - ours.firstLoss) / ours.firstLoss;
    const agree = r.variant === "nf4" ? Math.abs(relative) <= NF4_LOSS_TOLERANCE : null;
    return [{ variant: r.variant, lorac: ours.firstLoss, torch: r.firstLoss, relative, agree }];
  });
  if (checks.length > 0) console.log(`\nFirst-step loss (step 1's batch, before any update):`);
  for (const c of checks) {
    const verdict = c.agree === null
      ? "(other weights: NF4 quantization's effect, not a check)"
      : c.agree
      ? "(agree)"
      : "(DISAGREE: the two sides do not compute the same loss)";
    console.log(
      `  lorac ${fmt(c.lorac, 4)} vs ${VARIANTS[c.variant]} ${fmt(c.torch, 4)}: ${
        fmt(100 * c.relative, 2)
      }% ${verdict}`,
    );
  }
  return checks;
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  await buildCpu({ quiet: true });
  const peak = await measurePeak();
  console.error(`peak: ${fmt(peak.fp32_gflops_core)} GFLOP/s fp32 per core (${peak.isa})`);

  const gguf = await smollm2Gguf();
  using weights = await GgufLlamaWeights.open(gguf);
  const config = weights.config;
  const tokenizer = Tokenizer.fromGgufMetadata(weights.file.metadata);
  const eosId = tokenizer.eosId ?? config.eosTokenIds[0];
  // bf16 without bf16 instructions is too slow for the usual steps.
  const emulatedBf16 = !peak.bf16_native;
  const runs = (v: Variant) => v === "bf16" && emulatedBf16 ? { warmup: 0, steps: args.bf16Steps } : args;
  const count = Math.max(...args.variants.map((v) => runs(v).warmup + runs(v).steps));
  const batches = await benchBatches(tokenizer, eosId, args.budget, count);
  const works: BatchWork[] = batches.map((b) => {
    const packed = batchOf(b, b.map((_, i) => i));
    return {
      tokens: packed.tokens.length,
      attentionPairs: attentionPairs(packed.cuSeqlens),
      lossRows: packed.lossRows.length,
    };
  });
  const fill = works.map((w) => w.tokens / args.budget);
  console.error(
    `packing: ${count} steps of up to ${args.budget} tokens, ` +
      `${batches.map((b) => b.length).join("/")} examples, ${works.map((w) => w.tokens).join("/")} tokens ` +
      `(fill ${fmt(100 * Math.min(...fill))}-${fmt(100 * Math.max(...fill))}%)`,
  );

  const file = await Deno.makeTempFile({ suffix: ".json" });
  const python = await torchPython();
  const reports = new Map<Variant, SideReport>();
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        batches: batches.map((b) => b.map((e) => ({ tokens: e.tokens, completionStart: e.completionStart }))),
      }),
    );
    for (const variant of args.variants) {
      const { warmup, steps } = runs(variant);
      console.error(`${VARIANTS[variant]}: ${warmup} warm-up + ${steps} measured steps ...`);
      const config = {
        gguf,
        batches: file,
        variant,
        threads: args.threads,
        computeDtype: args.computeDtype,
        ...LORA,
        lr: LR,
        steps: warmup + steps,
      };
      // A side that crashes leaves a row saying so; the other variants' figures still come out.
      const report = await runSide(variant, config, python).catch((e: Error): SideReport => {
        console.error(e.message);
        return { skipped: `failed: ${e.message.split("\n").findLast((l) => l.trim() !== "")?.trim()}` };
      });
      if ("skipped" in report) console.error(`${VARIANTS[variant]}: skipped: ${report.skipped}`);
      else console.error(`${VARIANTS[variant]}: ${report.steps.map((s) => fmt(s.seconds, 2)).join(", ")} s`);
      reports.set(variant, report);
    }
  } finally {
    await Deno.remove(file);
  }

  // Trainable parameters: r·(in + out) per projection per layer, as PEFT and lib/model/lora_params.ts count them.
  const loraParams = LORA.r * config.numLayers *
    LINEAR_NAMES.reduce((n, name) => n + linearShape(config, name).reduce((a, b) => a + b), 0);
  const rows = args.variants.map((variant): Measured | Skipped => {
    const report = reports.get(variant)!;
    const name = VARIANTS[variant] + (variant === "lorac" && args.computeDtype === "bf16" ? ", bf16 compute" : "");
    if ("skipped" in report) return { variant, name, skipped: report.skipped };
    const { warmup } = runs(variant);
    const measured = report.steps.slice(warmup);
    const sum = (f: (s: StepReport) => number) => measured.reduce((a, s) => a + f(s), 0);
    const [seconds, cpuSeconds, tokens] = [sum((s) => s.seconds), sum((s) => s.cpu_seconds), sum((s) => s.tokens)];
    const flops = works.slice(warmup, report.steps.length)
      .reduce((f, w) => f + trainingFlops(config, loraParams, w), 0);
    const gflops = corePeak(variant, peak);
    return {
      variant,
      name: name + (variant === "bf16" && emulatedBf16 ? ` (${measured.length} step, no warm-up)` : ""),
      measuredSteps: measured.length,
      tokens,
      msPerStep: 1000 * median(measured.map((s) => s.seconds)),
      cpuSecondsPerStep: median(measured.map((s) => s.cpu_seconds)),
      tokensPerSecond: tokens / seconds,
      tokensPerCpuSecond: tokens / cpuSeconds,
      peakRssMiB: report.maxrss_bytes / 2 ** 20,
      mfu: flops / seconds / (gflops * args.threads * 1e9),
      cpuMfu: flops / cpuSeconds / (gflops * 1e9),
      firstLoss: report.steps[0].loss,
      losses: report.steps.map((s) => s.loss),
      seconds: measured.map((s) => s.seconds),
      loadSeconds: report.load_seconds,
    };
  });
  const ours = rows.find((r): r is Measured => r.variant === "lorac" && !("skipped" in r));
  printTable(rows, ours, args, fill, peak);
  const lossCheck = ours ? checkLosses(rows, ours) : [];

  const dir = args.out.slice(0, args.out.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    args.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        model: gguf,
        lora: LORA,
        lr: LR,
        args,
        peak,
        steps: works.map((w, s) => ({ examples: batches[s].length, ...w })),
        variants: rows,
        lossCheck,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`\nThe figures: ${args.out}`);
}

if (import.meta.main) await main();
