/**
 * LoRA training throughput: lorac (NF4 base) against PyTorch + PEFT on the
 * same packed batches of arxiv5 texts, in one run, with SmolLM2-135M-Instruct
 * (the Q4_1 GGUF of lib/model/default_model.ts; transformers dequantizes it).
 *
 *   deno task bench:train                   1 warm-up + 3 measured steps of at most 256 tokens
 *   deno task bench:train --steps 9 --warmup 2 --tokens 2048 --torch-budget 300
 *
 * A torch variant stops its measured steps once they have taken
 * --torch-budget seconds (default 30; at least one step runs): bf16 autocast
 * on a CPU without bf16 instructions takes over a minute a step.
 *
 * Both sides: LoRA r=16, alpha=32 on all seven projections, no dropout,
 * AdamW (torch defaults, lr 1e-4), one micro-batch per step. The batches
 * are the first rows of ../shared/data/arxiv5/train.csv (file order) under
 * the seed's prompt, packed end to end up to the token budget; they go to
 * bench/torch_train.py in a temp file, so both train on identical tokens
 * (every token real: no padding on either side). torch variants: fp32, bf16
 * autocast, and bitsandbytes NF4 where its CPU path trains; each runs in its
 * own process, so its peak RSS (getrusage maxrss) is its own; ours is the
 * peak of Deno.memoryUsage().rss sampled after loading and after every step.
 * MFU: the model FLOPs of lib/train/flops.ts (the same for both sides) per
 * second over this machine's fp32 FMA peak (bench/peak_flops.cpp; bf16 peak
 * for the bf16 variant where the CPU has AVX512-BF16). The table goes to
 * stdout, the figures to build/bench/train.json.
 *
 * @module
 */

import { buildCpu, buildDir } from "../cuda/build.ts";
import { openBackend } from "../lib/backend/backend.ts";
import { DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS, labelSet, readExamples } from "../lib/data/examples.ts";
import { PromptTemplate } from "../lib/data/prompts.ts";
import { smollm2Gguf } from "../lib/model/default_model.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { attentionPairs, type BatchWork, trainingFlops } from "../lib/train/flops.ts";
import { batchOf } from "../lib/train/packing.ts";
import { buildSftExample, type SftExample } from "../lib/train/sft_examples.ts";
import { trainStep } from "../lib/train/step.ts";
import { measurePeak, run, torchPython } from "./peak.ts";

const TRAIN_CSV = new URL("../../shared/data/arxiv5/train.csv", import.meta.url).pathname;
const LORA = { r: 16, alpha: 32 };
const LR = 1e-4;
const MAX_SEQ_LENGTH = 512;

/** What bench/peak_flops.cpp prints (GFLOP/s on all threads, and per core-second). */
/** One side's measured steps. */
interface SideResult {
  name: string;
  /** Wall seconds of each measured step. */
  seconds: number[];
  /** Losses of every step, warm-up included (a sanity check: both sides start from the same loss). */
  losses: number[];
  peakRssBytes: number;
  peakGflops: number;
}

/** A side that did not run, and why. */
interface Skipped {
  name: string;
  skipped: string;
}

interface Args {
  steps: number;
  warmup: number;
  tokens: number;
  torchBudget: number;
}

function parseArgs(args: string[]): Args {
  const int = (flag: string, fallback: number, min: number): number => {
    const at = args.indexOf(flag);
    if (at < 0) return fallback;
    const v = Number(args[at + 1]);
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(`${flag} needs an integer >= ${min}, got ${args[at + 1]}`);
    }
    return v;
  };
  return {
    steps: int("--steps", 3, 1),
    warmup: int("--warmup", 1, 0),
    tokens: int("--tokens", 256, 64),
    torchBudget: int("--torch-budget", 30, 0),
  };
}

/**
 * `count` batches of at most `budget` tokens: the first rows of train.csv in
 * file order under the seed's prompt, each batch filled greedily.
 */
async function benchBatches(
  tokenizer: Parameters<typeof buildSftExample>[2]["tokenizer"],
  eosId: number,
  budget: number,
  count: number,
): Promise<SftExample[][]> {
  const rows = await readExamples(TRAIN_CSV, { textFields: DEFAULT_TEXT_FIELDS, labelColumn: DEFAULT_LABEL_COLUMN });
  const format = PromptTemplate.seed(labelSet(rows));
  const options = { format, tokenizer, eosId, maxSeqLength: Math.min(MAX_SEQ_LENGTH, budget) };
  const batches: SftExample[][] = [];
  let current: SftExample[] = [];
  let tokens = 0;
  for (const row of rows) {
    const ex = buildSftExample(row.text, row.gold as string, options);
    if (tokens + ex.tokens.length > budget) {
      batches.push(current);
      if (batches.length === count) return batches;
      current = [];
      tokens = 0;
    }
    current.push(ex);
    tokens += ex.tokens.length;
  }
  throw new Error(
    `${TRAIN_CSV} holds too few rows for ${count} batches of ${budget} tokens: lower --steps or --tokens`,
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const threads = navigator.hardwareConcurrency;
  await buildCpu({ quiet: true });
  const peak = await measurePeak();
  console.error(`peak: ${fmt(peak.fp32_gflops)} GFLOP/s fp32 (${peak.isa}, ${peak.threads} threads)`);

  const gguf = await smollm2Gguf();
  using backend = await openBackend("cpu", { numThreads: threads });
  let peakRss = Deno.memoryUsage().rss;
  using loaded = await loadModel(gguf, backend, { progress: false });
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  const config = loaded.config;
  const eosId = loaded.tokenizer.eosId ?? config.eosTokenIds[0];
  const batches = await benchBatches(loaded.tokenizer, eosId, args.tokens, args.warmup + args.steps);
  const works: BatchWork[] = batches.map((b) => {
    const packed = batchOf(b, b.map((_, i) => i));
    return {
      tokens: packed.tokens.length,
      attentionPairs: attentionPairs(packed.cuSeqlens),
      lossRows: packed.lossRows.length,
    };
  });

  // Ours.
  using model = new LlamaModel(backend, config, loaded.weights, { lora: { ...LORA, dropout: 0 }, loraSeed: 0 });
  const ours: SideResult = {
    name: "lorac NF4",
    seconds: [],
    losses: [],
    peakRssBytes: 0,
    peakGflops: peak.fp32_gflops,
  };
  batches.forEach((batch, s) => {
    const t0 = performance.now();
    const r = trainStep(model, batch, { epoch: 0, batches: [batch.map((_, i) => i)] }, {
      adamw: { lr: LR },
      seed: 0,
      firstMicroBatch: s,
    });
    const dt = (performance.now() - t0) / 1000;
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    ours.losses.push(r.loss);
    if (s >= args.warmup) ours.seconds.push(dt);
    console.error(`lorac step ${s + 1}/${batches.length}: ${fmt(dt, 2)} s, loss ${fmt(r.loss, 4)}`);
  });
  ours.peakRssBytes = peakRss;
  const loraParams = model.lora!.n;

  // torch.
  const sides: (SideResult | Skipped)[] = [ours];
  const python = await torchPython();
  const variants = [["fp32", "torch+PEFT fp32"], ["bf16", "torch+PEFT bf16 autocast"], ["bnb4", "torch+PEFT bnb NF4"]];
  if (python === null) {
    for (const [, name] of variants) sides.push({ name, skipped: "no Python with torch (run tests/oracle/setup.sh)" });
  } else {
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          batches: batches.map((b) => b.map((e) => ({ tokens: e.tokens, completionStart: e.completionStart }))),
        }),
      );
      const script = new URL("torch_train.py", import.meta.url).pathname;
      for (const [variant, name] of variants) {
        console.error(`${name}: running ${batches.length} steps ...`);
        const config = {
          gguf,
          batches: file,
          variant,
          threads,
          r: LORA.r,
          alpha: LORA.alpha,
          lr: LR,
          warmup: args.warmup,
          budget: args.torchBudget,
        };
        const out = JSON.parse(await run(python, [script, JSON.stringify(config)]));
        if (out.skipped) {
          console.error(`${name}: skipped: ${out.skipped}`);
          sides.push({ name, skipped: out.skipped });
          continue;
        }
        const steps: { seconds: number; loss: number }[] = out.steps;
        const bf16Peak = variant === "bf16" && peak.bf16_gflops > 0;
        sides.push({
          name,
          seconds: steps.slice(args.warmup).map((s) => s.seconds),
          losses: steps.map((s) => s.loss),
          peakRssBytes: out.maxrss_bytes,
          peakGflops: bf16Peak ? peak.bf16_gflops : peak.fp32_gflops,
        });
      }
    } finally {
      await Deno.remove(file);
    }
  }

  // The table.
  // Each side's measured batches: the first ones after the warm-up (a torch variant may stop early).
  const measured = (n: number) => works.slice(args.warmup, args.warmup + n);
  const tokens = measured(args.steps).reduce((n, w) => n + w.tokens, 0);
  const rows = sides.map((side) => {
    if ("skipped" in side) return { name: side.name, skipped: side.skipped };
    const total = side.seconds.reduce((a, b) => a + b, 0);
    const own = measured(side.seconds.length);
    const flops = own.reduce((f, w) => f + trainingFlops(config, loraParams, w), 0);
    const sideTokens = own.reduce((n, w) => n + w.tokens, 0);
    return {
      name: side.name,
      measuredSteps: side.seconds.length,
      tokens: sideTokens,
      msPerStep: 1000 * median(side.seconds),
      tokensPerSecond: sideTokens / total,
      peakRssMiB: side.peakRssBytes / 2 ** 20,
      flops,
      mfu: flops / total / (side.peakGflops * 1e9),
      firstLoss: side.losses[0],
      lastLoss: side.losses[side.losses.length - 1],
      seconds: side.seconds,
    };
  });
  console.log(
    `\nSmolLM2-135M-Instruct, LoRA r=${LORA.r} alpha=${LORA.alpha} on all seven projections, ` +
      `${args.steps} measured steps (after ${args.warmup} warm-up) of ~${args.tokens} tokens ` +
      `(${tokens} real tokens in all on our side), ${threads} threads, peak ${
        fmt(peak.fp32_gflops)
      } GFLOP/s fp32 (${peak.isa})\n`,
  );
  console.log(
    "| side | steps | ms/step (median) | tokens/s | peak RSS MiB | MFU | loss first → last | " +
      "ours/torch tokens/s | ours/torch RSS |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---|---:|---:|");
  const oursRow = rows[0] as { tokensPerSecond: number; peakRssMiB: number };
  for (const r of rows) {
    if ("skipped" in r) {
      console.log(`| ${r.name} | skipped: ${r.skipped} | | | | | | | |`);
      continue;
    }
    const mine = r === rows[0];
    const speed = mine ? "" : `${fmt(oursRow.tokensPerSecond / r.tokensPerSecond, 2)}x`;
    const rss = mine ? "" : `${fmt(oursRow.peakRssMiB / r.peakRssMiB, 2)}x`;
    console.log(
      `| ${r.name} | ${r.measuredSteps} | ${fmt(r.msPerStep, 0)} | ${fmt(r.tokensPerSecond)} | ${
        fmt(r.peakRssMiB, 0)
      } | ` +
        `${fmt(100 * r.mfu)}% | ${fmt(r.firstLoss!, 3)} → ${fmt(r.lastLoss!, 3)} | ${speed} | ${rss} |`,
    );
  }
  const dir = `${buildDir().replace(/\/$/, "")}/bench`;
  const out = `${dir}/train.json`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        model: gguf,
        lora: LORA,
        args,
        threads,
        peak,
        sides: rows,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`\nThe figures: ${out}`);
}

if (import.meta.main) await main();
