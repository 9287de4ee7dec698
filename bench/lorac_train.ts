/**
 * lorac side of bench/train_bench.ts: LoRA training steps of the GGUF model
 * (NF4 base) on the batches that train_bench.ts wrote, in a process of its
 * own so that the peak RSS is lorac's alone. The counterpart of
 * bench/torch_train.py: the same config in, the same JSON line out.
 *
 *   deno run -A bench/lorac_train.ts '{"gguf": ..., "batches": ..., "variant": "lorac", ...}'
 *
 * @module
 */

import { type ComputeDType, openBackend } from "../lib/backend/backend.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import type { SequenceToPack } from "../lib/model/batch.ts";
import { trainStep } from "../lib/train/step.ts";
import { peakRss } from "./peak.ts";

/** What train_bench.ts hands a side (here as JSON in argv[0]; torch_train.py reads the same). */
export interface SideConfig {
  /** The GGUF both sides load. */
  gguf: string;
  /** A JSON file `{"batches": [[{tokens, completionStart}, ...], ...]}`: one packed batch per step. */
  batches: string;
  /** lorac, fp32, bf16 or nf4. */
  variant: string;
  threads: number;
  /** What lorac's NF4 base multiplies in (`--compute_dtype`). */
  computeDtype: ComputeDType;
  r: number;
  alpha: number;
  lr: number;
  /** Steps to run: the first `steps` batches of the file. */
  steps: number;
}

/** One step as a side reports it. */
export interface StepReport {
  /** Wall seconds of forward, backward and optimizer update. */
  seconds: number;
  /** CPU seconds of the process (all threads) in that time: what a loaded machine does not inflate. */
  cpu_seconds: number;
  /** Tokens of the step's batch. */
  tokens: number;
  /** Mean cross-entropy over the completion tokens, before the update. */
  loss: number;
}

/** What a side prints: its steps and peak RSS, or why it could not run. */
export type SideReport = { steps: StepReport[]; maxrss_bytes: number; load_seconds: number } | { skipped: string };

/** CPU seconds (user + system, all threads) of this process so far, from /proc; NaN without it. */
function cpuSeconds(): number {
  try {
    // Fields after the ")" that closes the command name: utime and stime are the 12th and 13th, in 1/100 s (USER_HZ).
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const config: SideConfig = JSON.parse(Deno.args[0]);
  const start = performance.now();
  using backend = await openBackend("cpu", { numThreads: config.threads, computeDtype: config.computeDtype });
  using loaded = await loadModel(config.gguf, backend, { tokenizer: false, progress: false });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, {
    lora: { r: config.r, alpha: config.alpha, dropout: 0 },
    loraSeed: 0,
  });
  const loadSeconds = (performance.now() - start) / 1000;
  const batches: SequenceToPack[][] = JSON.parse(await Deno.readTextFile(config.batches)).batches;
  let sampled = Deno.memoryUsage().rss;
  const steps: StepReport[] = [];
  for (const [s, batch] of batches.slice(0, config.steps).entries()) {
    const t0 = performance.now();
    const cpu0 = cpuSeconds();
    const r = trainStep(model, batch, { epoch: 0, batches: [batch.map((_, i) => i)] }, {
      adamw: { lr: config.lr },
      seed: 0,
      firstMicroBatch: s,
    });
    steps.push({
      seconds: (performance.now() - t0) / 1000,
      cpu_seconds: cpuSeconds() - cpu0,
      tokens: r.work.tokens,
      loss: r.loss,
    });
    sampled = Math.max(sampled, Deno.memoryUsage().rss);
  }
  const report: SideReport = { steps, maxrss_bytes: peakRss(sampled), load_seconds: loadSeconds };
  console.log(JSON.stringify(report));
}

if (import.meta.main) await main();
