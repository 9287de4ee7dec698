/**
 * All files of a prediction run at once: results.txt, metrics.json,
 * report.html and (when asked) predictions.csv. Every text is built in
 * memory first, so a failure (a bad probability row, say) leaves no file
 * behind; then each file is written atomically.
 *
 * @module
 */

import { writeFileAtomic } from "../util/atomic_write.ts";
import { reportHtml } from "./html.ts";
import { type Metrics, metricsJson } from "./metrics_json.ts";
import { type PredictionRow, predictionsCsv } from "./predictions.ts";
import { resultsText } from "./results.ts";
import type { TrainingRecord } from "./training_log.ts";

/** Where the files go; a missing `predictionsCsv` writes no predictions file. */
export interface OutputPaths {
  /** results.txt */
  results: string;
  /** metrics.json */
  metricsJson: string;
  /** report.html */
  reportHtml: string;
  /** predictions.csv (the seed's --save_csv) */
  predictionsCsv?: string;
}

/**
 * The usual names in folder `dir`: results.txt, metrics.json, report.html,
 * and predictions.csv unless `predictionsCsv` is null.
 *
 * @example
 * ```ts
 * import { outputPaths } from "./outputs.ts";
 * outputPaths("out").reportHtml; // "out/report.html"
 * ```
 */
export function outputPaths(dir: string, predictionsCsv: string | null = "predictions.csv"): OutputPaths {
  const base = dir.replace(/\/+$/, "");
  const paths: OutputPaths = {
    results: `${base}/results.txt`,
    metricsJson: `${base}/metrics.json`,
    reportHtml: `${base}/report.html`,
  };
  if (predictionsCsv !== null) paths.predictionsCsv = `${base}/${predictionsCsv}`;
  return paths;
}

/** What a prediction run reports. */
export interface RunOutputs {
  /** The scores. */
  metrics: Metrics;
  /** One row per example, for predictions.csv. */
  predictions?: readonly PredictionRow[];
  /** Training log records (metrics.jsonl) for the report's curves. */
  training?: readonly TrainingRecord[];
  /** Facts about the run (model, adapter, decode mode, timings), in metrics.json and report.html. */
  run?: Record<string, string | number | boolean>;
  /** Decimals in results.txt's report (default 3, the seed's). */
  digits?: number;
}

/**
 * Builds every output text, then writes each file atomically; returns the
 * paths written.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { outputPaths, writeRunOutputs } from "./outputs.ts";
 * const dir = await Deno.makeTempDir();
 * const metrics = classificationMetrics(["ham", "spam"], ["ham", "ham"], ["ham", "spam"]);
 * const predictions = [
 *   { text: "Hi.", gold: "ham", pred: "ham" },
 *   { text: "WIN.", gold: "spam", pred: "ham" },
 * ];
 * (await writeRunOutputs(outputPaths(dir), { metrics, predictions })).length; // 4
 * ```
 */
export async function writeRunOutputs(paths: OutputPaths, outputs: RunOutputs): Promise<string[]> {
  const { metrics, run } = outputs;
  const files: [string, string][] = [
    [paths.results, resultsText(metrics, outputs.digits)],
    [paths.metricsJson, JSON.stringify(metricsJson(metrics, run), null, 2) + "\n"],
    [paths.reportHtml, reportHtml({ metrics, training: outputs.training, run })],
  ];
  if (paths.predictionsCsv !== undefined) {
    if (!outputs.predictions) throw new Error(`no predictions to write to ${paths.predictionsCsv}`);
    files.push([paths.predictionsCsv, predictionsCsv(outputs.predictions, metrics.labels)]);
  }
  for (const [path, text] of files) await writeFileAtomic(path, text);
  return files.map(([path]) => path);
}
