/**
 * results.txt: what the seed's predict.py prints (and its results.txt
 * holds), line for line: accuracy, micro and macro F1 with 3 decimals, the
 * classification_report, the confusion matrix as NumPy prints it; then what
 * the seed did not report: invalid answers and unknown gold labels, when
 * there are any. Multi-label runs print the subset accuracy in the first
 * line and per-label confusion counts instead of the matrix.
 *
 * @module
 */

import { classificationReport } from "../metrics/classification.ts";
import { multiLabelReport } from "../metrics/multilabel.ts";
import { formatFixed, formatIntMatrix } from "../metrics/sklearn_format.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";
import type { Metrics } from "./metrics_json.ts";

/**
 * The text of results.txt for `m`, with `digits` decimals in the report (the
 * seed's 3).
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { resultsText } from "./results.ts";
 * resultsText(classificationMetrics(["a", "b"], ["a", "b"], ["a", "b"])).split("\n")[0]; // "Accuracy:   1.000"
 * ```
 */
export function resultsText(m: Metrics, digits = 3): string {
  const f = (x: number) => formatFixed(x, 3);
  let s = `Accuracy:   ${f(m.accuracy)}\nF1 (micro): ${f(m.micro.f1)}\nF1 (macro): ${f(m.macro.f1)}\n\n`;
  s += "Per-class report:\n";
  if (m.kind === "single") {
    s += classificationReport(m, digits) + "\n\n";
    s += "Confusion matrix (rows = true, cols = pred):\n" + formatIntMatrix(m.confusion) + "\n";
  } else {
    s += multiLabelReport(m, digits) + "\n\n";
    const width = Math.max(...m.labels.map((l) => l.length));
    s += "Per-label counts (tn fp fn tp):\n";
    s += m.labels.map((l, i) => {
      const c = m.counts[i];
      return `${l.padStart(width)}  ${formatIntMatrix([[c.tn, c.fp, c.fn, c.tp]]).slice(1, -1)}`;
    }).join("\n") + "\n";
  }
  if (m.invalidPredictions > 0 || m.unknownGold > 0) s += "\n";
  if (m.invalidPredictions > 0) {
    s += `Invalid answers (no label; counted as wrong): ${m.invalidPredictions} of ${m.examples}\n`;
  }
  if (m.unknownGold > 0) {
    s += `Gold labels outside the label set (counted as wrong): ${m.unknownGold}\n`;
  }
  return s;
}

/**
 * Writes results.txt atomically.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { writeResults } from "./results.ts";
 * const dir = await Deno.makeTempDir();
 * await writeResults(`${dir}/results.txt`, classificationMetrics(["a"], ["b"], ["a", "b"]));
 * ```
 */
export async function writeResults(path: string, m: Metrics, digits = 3): Promise<void> {
  await writeFileAtomic(path, resultsText(m, digits));
}
