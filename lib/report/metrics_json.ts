/**
 * metrics.json: the scores of a prediction run in machine-readable form.
 * Its "report" member is scikit-learn's `classification_report(...,
 * output_dict=True)` (per-label precision, recall, "f1-score", support, then
 * "accuracy" or "micro avg", "macro avg", "weighted avg" and, multi-label,
 * "samples avg"), so scripts written for scikit-learn read it unchanged.
 * Beside it: the seed's headline numbers (accuracy, f1_micro, f1_macro), the
 * confusion matrix (rows = true, columns = predicted, in label order) and
 * the counts of invalid answers and unknown gold labels.
 *
 * @module
 */

import { averageRows, type ClassificationMetrics } from "../metrics/classification.ts";
import { multiLabelAverageRows, type MultiLabelMetrics } from "../metrics/multilabel.ts";
import type { ReportRow } from "../metrics/sklearn_format.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";

/** Single- or multi-label metrics. */
export type Metrics = ClassificationMetrics | MultiLabelMetrics;

/** One entry of scikit-learn's report dict. */
export interface ReportEntry {
  /** Precision. */
  precision: number;
  /** Recall. */
  recall: number;
  /** F1 score. */
  "f1-score": number;
  /** True instances. */
  support: number;
}

/** The contents of metrics.json. */
export interface MetricsJson {
  /** "single-label" or "multi-label". */
  task: "single-label" | "multi-label";
  /** The label set, in order. */
  labels: string[];
  /** Rows scored. */
  examples: number;
  /** Accuracy (multi-label: subset accuracy). */
  accuracy: number;
  /** Micro-averaged F1 over the label set. */
  f1_micro: number;
  /** Macro-averaged F1. */
  f1_macro: number;
  /** Support-weighted F1. */
  f1_weighted: number;
  /** Answers that were no label (counted as wrong). */
  invalid_predictions: number;
  /** Gold labels outside the label set (counted as wrong). */
  unknown_gold: number;
  /** scikit-learn's classification_report as a dict; "accuracy" is a number, the rest are entries. */
  report: Record<string, ReportEntry | number>;
  /** Single-label: confusion_matrix[true][predicted] in label order. */
  confusion_matrix?: number[][];
  /** Single-label: invalid answers per true label. */
  invalid_by_label?: Record<string, number>;
  /** Multi-label: per-label confusion counts. */
  label_counts?: Record<string, { tn: number; fp: number; fn: number; tp: number }>;
  /** Anything the caller adds about the run (model, adapter, decode mode, timings). */
  run?: Record<string, unknown>;
}

const entry = (r: { precision: number; recall: number; f1: number; support: number }): ReportEntry => ({
  precision: r.precision,
  recall: r.recall,
  "f1-score": r.f1,
  support: r.support,
});

/**
 * The metrics.json object for `m`, with `run` (model, adapter, ...) when given.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { metricsJson } from "./metrics_json.ts";
 * const j = metricsJson(classificationMetrics(["a", "b"], ["a", "a"], ["a", "b"]));
 * j.report.accuracy; // 0.5
 * j.confusion_matrix; // [[1, 0], [1, 0]]
 * ```
 */
export function metricsJson(m: Metrics, run?: Record<string, unknown>): MetricsJson {
  const report: Record<string, ReportEntry | number> = {};
  for (const s of m.perLabel) report[s.label] = entry(s);
  const averages: ReportRow[] = m.kind === "single" ? averageRows(m) : multiLabelAverageRows(m);
  for (const r of averages) report[r.name] = r.name === "accuracy" ? r.precision : entry(r);
  const out: MetricsJson = {
    task: m.kind === "single" ? "single-label" : "multi-label",
    labels: m.labels,
    examples: m.examples,
    accuracy: m.accuracy,
    f1_micro: m.micro.f1,
    f1_macro: m.macro.f1,
    f1_weighted: m.weighted.f1,
    invalid_predictions: m.invalidPredictions,
    unknown_gold: m.unknownGold,
    report,
  };
  if (m.kind === "single") {
    out.confusion_matrix = m.confusion;
    out.invalid_by_label = Object.fromEntries(m.labels.map((l, i) => [l, m.invalidByLabel[i]]));
  } else {
    out.label_counts = Object.fromEntries(m.labels.map((l, i) => [l, m.counts[i]]));
  }
  if (run) out.run = run;
  return out;
}

/**
 * Writes metrics.json (pretty-printed, atomically).
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { writeMetricsJson } from "./metrics_json.ts";
 * const dir = await Deno.makeTempDir();
 * await writeMetricsJson(`${dir}/metrics.json`, classificationMetrics(["a"], ["a"], ["a", "b"]), { decode: "score" });
 * JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`)).accuracy; // 1
 * ```
 */
export async function writeMetricsJson(path: string, m: Metrics, run?: Record<string, unknown>): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(metricsJson(m, run), null, 2) + "\n");
}
