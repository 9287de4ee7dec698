/**
 * lorac side of bench/predict_bench.ts: `predict()` (lib/predict) of a test
 * CSV with the GGUF model and a LoRA adapter, in one decode mode, in a
 * process of its own so that the peak RSS is this mode's alone. The
 * counterpart of bench/torch_predict.py: the same JSON line out.
 *
 *   deno run -A bench/lorac_predict.ts '{"gguf": ..., "adapter": ..., "data": ..., "decode": "generate", ...}'
 *
 * With `promptsOut`, it also writes the prompt ids it decoded, the label set
 * and max_new_tokens there: the job torch_predict.py runs, so that both
 * sides decode the very same tokens.
 *
 * @module
 */

import type { ComputeDType } from "../lib/backend/backend.ts";
import type { DecodeMode } from "../lib/predict/decode.ts";
import { predict } from "../lib/predict/predict.ts";
import { peakRss } from "./peak.ts";

/** What predict_bench.ts hands the lorac side (as JSON in argv[0]). */
export interface LoracPredictConfig {
  /** The base model both sides load. */
  gguf: string;
  /** The PEFT adapter folder. */
  adapter: string;
  /** The folder holding test.csv. */
  data: string;
  /** The label set, in order. */
  labels: string[];
  decode: DecodeMode;
  /** How the frozen base is stored: "nf4" (lorac's default), "f32" or "bf16". */
  baseDtype: "nf4" | "f32" | "bf16";
  /** What the NF4 base multiplies in (`--compute_dtype`). */
  computeDtype: ComputeDType;
  threads: number;
  maxSeqLength: number;
  /** predict's batch_tokens. */
  batchTokens: number;
  /** Where predict writes results.txt, metrics.json and report.html. */
  resultsDir: string;
  /** Where to write {prompts, labels, max_new_tokens} for torch_predict.py; absent: nowhere. */
  promptsOut?: string;
}

/** What a side prints: decode wall seconds, peak RSS, each example's answer and label; or why it did not run. */
export type PredictSideReport =
  | {
    /** Wall seconds of decoding (model loading and prompt building excluded). */
    seconds: number;
    maxrss_bytes: number;
    /** The generated text, trimmed, per example (null when scoring). */
    answers: (string | null)[];
    /** The predicted label per example, null when the answer is no label. */
    preds: (string | null)[];
  }
  | { skipped: string };

async function main(): Promise<void> {
  const config: LoracPredictConfig = JSON.parse(Deno.args[0]);
  const r = await predict({
    basePath: config.data,
    testFile: "test.csv",
    baseModelName: config.gguf,
    outputDir: config.adapter,
    resultsDir: config.resultsDir,
    saveCsv: null,
    labels: config.labels,
    decode: config.decode,
    baseDtype: config.baseDtype,
    computeDtype: config.computeDtype,
    maxSeqLength: config.maxSeqLength,
    batchTokens: config.batchTokens,
    device: "cpu",
    numThreads: config.threads,
    progress: false,
  });
  if (config.promptsOut) {
    const job = { prompts: r.promptIds, labels: r.labels, max_new_tokens: r.maxNewTokens };
    await Deno.writeTextFile(config.promptsOut, JSON.stringify(job));
  }
  const report: PredictSideReport = {
    seconds: r.decodeSeconds,
    maxrss_bytes: peakRss(Deno.memoryUsage().rss),
    answers: r.predictions.map((p) => p.answer ?? null),
    preds: r.predictions.map((p) => p.pred),
  };
  console.log(JSON.stringify(report));
}

if (import.meta.main) await main();
