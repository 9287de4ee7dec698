/**
 * LoRA training throughput: lorac (NF4 base) against PyTorch + PEFT on the
 * same packed batches of arxiv5 texts, in one run, with SmolLM2-135M-Instruct
 * (the Q4_1 GGUF of lib/model/default_model.ts; transformers dequantizes it).
 *
 *   deno task bench:train                                  1 warm-up + 3 measured steps of 2048 tokens
 *   deno task bench:train --steps 2 --budget 1024 --variants lorac,fp32,nf4 --threads 2 --out /tmp/t.json
 *
 * Variants (`--variants`, default all): lorac (NF4 base), fp32, bf16
 * (autocast) and nf4 (bitsandbytes Linear4bit, where its CPU path trains);
 * each runs in its own process (bench/lorac_train.ts, bench/torch_train.py),
 * so its peak RSS (VmHWM, ru_maxrss) is its own. bf16 autocast on a CPU
 * without bf16 instructions takes minutes a step, so it runs `--bf16-steps`
 * (default 1) measured steps and no warm-up; the table says so.
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
 * second over this machine's FMA peak (bench/peak_flops.cpp; bf16 peak for
 * bf16 where the CPU has AVX512-BF16). The first step's loss (before any
 * update, so the base models' loss) is printed for every variant: lorac and
 * torch must agree to quantization noise. The table goes to stdout, the
 * figures to bench/results/train.json (or `--out`).
 *
 * @module
 */

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
import type { SideConfig, SideReport } from "./lorac_train.ts";
import { measurePeak, type Peak, run, torchPython } from "./peak.ts";

const TRAIN_CSV = new URL("../../shared/data/arxiv5/train.csv", import.meta.url).pathname;
const DEFAULT_OUT = new URL("results/train.json", import.meta.url).pathname;
const LORA = { r: 16, alpha: 32 };
const LR = 1e-4;
const MAX_SEQ_LENGTH = 512;
/** Unused examples a step looks through for one that fits its remaining room. */
const LOOKAHEAD = 64;
/** First-step losses further apart than this (relative) are flagged: the two sides do not compute the same thing. */
const LOSS_TOLERANCE = { nf4: 0.02, fp32: 0.05, bf16: 0.05 } as const;

const VARIANTS = {
  lorac: "lorac NF4",
  fp32: "torch+PEFT fp32",
  bf16: "torch+PEFT bf16 autocast",
  nf4: "torch+PEFT bnb NF4",
} as const;
type Variant = keyof typeof VARIANTS;

interface Args {
  steps: number;
  warmup: number;
  budget: number;
  threads: number;
  bf16Steps: number;
  variants: Variant[];
  out: string;
}

const USAGE = "flags: --steps N --warmup N --budget TOKENS --threads N --bf16-steps N " +
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
    steps: int("--steps", 3, 1),
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
  flags.delete("--variants");
  flags.delete("--out");
  if (flags.size > 0) throw new Error(`bench/train_bench.ts: unknown flag ${[...flags.keys()][0]}; ${USAGE}`);
  return { ...parsed, variants: variants as Variant[], out };
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
  mfu: number;
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

/** GFLOP/s the variant could reach on `threads` threads. */
function peakFor(variant: Variant, peak: Peak, threads: number): number {
  const bf16 = variant === "bf16" && peak.bf16_gflops > 0;
  const all = bf16 ? peak.bf16_gflops : peak.fp32_gflops;
  const core = bf16 ? peak.bf16_gflops_core : peak.fp32_gflops_core;
  return threads === peak.threads ? all : core * threads;
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  await buildCpu({ quiet: true });
  const peak = await measurePeak();
  console.error(`peak: ${fmt(peak.fp32_gflops)} GFLOP/s fp32 (${peak.isa}, ${peak.threads} threads)`);

  const gguf = await smollm2Gguf();
  using weights = await GgufLlamaWeights.open(gguf);
  const config = weights.config;
  const tokenizer = Tokenizer.fromGgufMetadata(weights.file.metadata);
  const eosId = tokenizer.eosId ?? config.eosTokenIds[0];
  const runs = (v: Variant) => v === "bf16" ? { warmup: 0, steps: args.bf16Steps } : args;
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
      const report = await runSide(variant, {
        gguf,
        batches: file,
        variant,
        threads: args.threads,
        r: LORA.r,
        alpha: LORA.alpha,
        lr: LR,
        steps: warmup + steps,
      }, python);
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
    if ("skipped" in report) return { variant, name: VARIANTS[variant], skipped: report.skipped };
    const { warmup } = runs(variant);
    const measured = report.steps.slice(warmup);
    const seconds = measured.reduce((a, s) => a + s.seconds, 0);
    const tokens = measured.reduce((a, s) => a + s.tokens, 0);
    const flops = works.slice(warmup, report.steps.length).reduce(
      (f, w) => f + trainingFlops(config, loraParams, w),
      0,
    );
    return {
      variant,
      name: VARIANTS[variant] + (variant === "bf16" ? ` (${measured.length} step, no warm-up)` : ""),
      measuredSteps: measured.length,
      tokens,
      msPerStep: 1000 * median(measured.map((s) => s.seconds)),
      cpuSecondsPerStep: median(measured.map((s) => s.cpu_seconds)),
      tokensPerSecond: tokens / seconds,
      peakRssMiB: report.maxrss_bytes / 2 ** 20,
      mfu: flops / seconds / (peakFor(variant, peak, args.threads) * 1e9),
      firstLoss: report.steps[0].loss,
      losses: report.steps.map((s) => s.loss),
      seconds: measured.map((s) => s.seconds),
      loadSeconds: report.load_seconds,
    };
  });

  const ours = rows.find((r): r is Measured => r.variant === "lorac" && !("skipped" in r));
  console.log(
    `\nSmolLM2-135M-Instruct, LoRA r=${LORA.r} alpha=${LORA.alpha} on all seven projections; ` +
      `${args.steps} measured steps after ${args.warmup} warm-up, each ${args.budget} tokens of whole examples ` +
      `packed without padding (fill ${fmt(100 * Math.min(...fill))}-${fmt(100 * Math.max(...fill))}%); ` +
      `${args.threads} threads; peak ${fmt(peakFor("fp32", peak, args.threads))} GFLOP/s fp32 (${peak.isa})\n`,
  );
  console.log(
    "| variant | steps | ms/step (median) | CPU s/step | tokens/s | peak RSS MiB | MFU | first-step loss | " +
      "speed: lorac ÷ this | RSS: lorac ÷ this |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    if ("skipped" in r) {
      console.log(`| ${r.name} | skipped: ${r.skipped} | | | | | | | | |`);
      continue;
    }
    const speed = ours ? `${fmt(ours.tokensPerSecond / r.tokensPerSecond, 2)}x` : "";
    const rss = ours ? `${fmt(ours.peakRssMiB / r.peakRssMiB, 2)}x` : "";
    console.log(
      `| ${r.name} | ${r.measuredSteps} | ${fmt(r.msPerStep, 0)} | ${fmt(r.cpuSecondsPerStep)} | ` +
        `${fmt(r.tokensPerSecond)} | ` +
        `${fmt(r.peakRssMiB, 0)} | ${fmt(100 * r.mfu)}% | ${fmt(r.firstLoss, 4)} | ${speed} | ${rss} |`,
    );
  }
  const lossCheck = ours
    ? rows.flatMap((r) => {
      if ("skipped" in r || r.variant === "lorac") return [];
      const relative = (r.firstLoss - ours.firstLoss) / ours.firstLoss;
      const agree = Math.abs(relative) <= LOSS_TOLERANCE[r.variant as keyof typeof LOSS_TOLERANCE];
      return [{ variant: r.variant, lorac: ours.firstLoss, torch: r.firstLoss, relative, agree }];
    })
    : [];
  if (lossCheck.length > 0) console.log(`\nFirst-step loss (step 1's batch, before any update):`);
  for (const c of lossCheck) {
    console.log(
      `  lorac ${fmt(c.lorac, 4)} vs ${VARIANTS[c.variant]} ${fmt(c.torch, 4)}: ${fmt(100 * c.relative, 2)}% ` +
        (c.agree ? "(agree)" : "(DISAGREE: the two sides do not compute the same loss)"),
    );
  }

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
