/**
 * Single-label classification metrics, equal to scikit-learn's on the same
 * predictions (tests/oracle/metrics_test.ts checks it): accuracy; precision,
 * recall, F1 and support per label; their micro, macro and weighted
 * averages; the confusion matrix; the `classification_report` text.
 *
 * The scikit-learn call they equal is the seed's, over the label set:
 * gold and predictions mapped to label indices, `labels=range(n)`,
 * `zero_division=0`. Two kinds of row cannot be mapped and count as wrong:
 *
 * - an invalid prediction (an answer that is no label) is index -2: wrong
 *   for accuracy and recall, no false positive for any label;
 * - a gold label outside the label set (a test row the classifier cannot
 *   get right) is index -1: wrong for accuracy, a false positive for the
 *   predicted label. (The seed dropped such rows from its scores.)
 *
 * With either present, scikit-learn's report shows a "micro avg" row instead
 * of "accuracy" (the micro F1 is then not the accuracy), and so do we.
 *
 * @module
 */

import { classificationReportText, type ReportRow } from "./sklearn_format.ts";

/** Precision, recall, F1 and support of one label or one average. */
export interface Scores {
  /** Precision: correct among those predicted (0 when none was predicted). */
  precision: number;
  /** Recall: correct among those that truly are (0 when none is). */
  recall: number;
  /** F1: 2·tp / (true + predicted), 0 when both are 0. */
  f1: number;
  /** True instances (for an average: of all labels). */
  support: number;
}

/** The scores of one label. */
export interface LabelScores extends Scores {
  /** The label. */
  label: string;
}

/** Everything measured on single-label predictions. */
export interface ClassificationMetrics {
  /** Single-label metrics. */
  kind: "single";
  /** The label set, in order (rows and columns of `confusion`). */
  labels: string[];
  /** Rows scored. */
  examples: number;
  /** Rows whose prediction equals their gold label. */
  correct: number;
  /** correct / examples. */
  accuracy: number;
  /** Scores per label, in label order. */
  perLabel: LabelScores[];
  /** Micro average (over the label set). */
  micro: Scores;
  /** Unweighted mean over labels. */
  macro: Scores;
  /** Mean over labels weighted by support. */
  weighted: Scores;
  /** confusion[t][p]: rows with gold label t predicted as label p (rows = true, columns = predicted). */
  confusion: number[][];
  /** Predictions that are no label (counted as wrong). */
  invalidPredictions: number;
  /** invalidByLabel[t]: invalid predictions among rows whose gold is label t. */
  invalidByLabel: number[];
  /** Rows whose gold label is outside the label set (counted as wrong). */
  unknownGold: number;
}

const ratio = (num: number, den: number) => (den === 0 ? 0 : num / den);

/**
 * Scores from counts, as scikit-learn's precision_recall_fscore_support with
 * zero_division=0.
 *
 * @example
 * ```ts
 * import { scoresFromCounts } from "./classification.ts";
 * scoresFromCounts(3, 4, 6); // { precision: 0.75, recall: 0.5, f1: 0.6, support: 6 }
 * ```
 */
export function scoresFromCounts(tp: number, predicted: number, actual: number): Scores {
  return {
    precision: ratio(tp, predicted),
    recall: ratio(tp, actual),
    f1: ratio(2 * tp, actual + predicted),
    support: actual,
  };
}

/**
 * Mean of per-label scores, optionally weighted by support (all-zero
 * weights: unweighted, as scikit-learn).
 *
 * @example
 * ```ts
 * import { averageScores } from "./classification.ts";
 * const a = { precision: 1, recall: 1, f1: 1, support: 3 };
 * const b = { precision: 0, recall: 0, f1: 0, support: 1 };
 * averageScores([a, b], true).f1; // 0.75
 * ```
 */
export function averageScores(perLabel: readonly Scores[], weighted: boolean): Scores {
  const support = perLabel.reduce((a, s) => a + s.support, 0);
  const useWeights = weighted && support > 0;
  const mean = (key: "precision" | "recall" | "f1") => {
    let sum = 0;
    for (const s of perLabel) sum += useWeights ? s[key] * s.support : s[key];
    return sum / (useWeights ? support : perLabel.length);
  };
  return { precision: mean("precision"), recall: mean("recall"), f1: mean("f1"), support };
}

/**
 * Scores single-label predictions against gold labels. A prediction that is
 * null or not in `labels` is invalid; a gold label not in `labels` is
 * unknown; both count as wrong (see the module notes).
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "./classification.ts";
 * const m = classificationMetrics(["ham", "spam", "spam"], ["ham", "spam", null], ["ham", "spam"]);
 * m.accuracy; // 0.6666666666666666
 * m.confusion; // [[1, 0], [0, 1]]
 * m.invalidPredictions; // 1
 * ```
 */
export function classificationMetrics(
  gold: readonly string[],
  pred: readonly (string | null)[],
  labels: readonly string[],
): ClassificationMetrics {
  if (gold.length !== pred.length) {
    throw new RangeError(`${gold.length} gold labels but ${pred.length} predictions; they must pair up`);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const n = labels.length;
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const invalidByLabel = new Array<number>(n).fill(0);
  const predicted = new Array<number>(n).fill(0);
  let correct = 0, invalidPredictions = 0, unknownGold = 0;
  for (let i = 0; i < gold.length; i++) {
    const t = index.get(gold[i]) ?? -1;
    const p = pred[i] === null ? -2 : index.get(pred[i] as string) ?? -2;
    if (p === -2) invalidPredictions++;
    if (t === -1) unknownGold++;
    if (p >= 0) predicted[p]++;
    if (t >= 0 && p >= 0) confusion[t][p]++;
    if (t >= 0 && p === -2) invalidByLabel[t]++;
    if (t >= 0 && t === p) correct++;
  }
  const perLabel = labels.map((label, k) => {
    const actual = confusion[k].reduce((a, b) => a + b, 0) + invalidByLabel[k];
    return { label, ...scoresFromCounts(confusion[k][k], predicted[k], actual) };
  });
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const micro = scoresFromCounts(correct, sum(predicted), sum(perLabel.map((s) => s.support)));
  return {
    kind: "single",
    labels: [...labels],
    examples: gold.length,
    correct,
    accuracy: ratio(correct, gold.length),
    perLabel,
    micro,
    macro: averageScores(perLabel, false),
    weighted: averageScores(perLabel, true),
    confusion,
    invalidPredictions,
    invalidByLabel,
    unknownGold,
  };
}

/**
 * The report rows scikit-learn prints after the labels: "accuracy" (or
 * "micro avg" when some row was invalid or had an unknown gold label), then
 * "macro avg" and "weighted avg".
 *
 * @example
 * ```ts
 * import { averageRows, classificationMetrics } from "./classification.ts";
 * averageRows(classificationMetrics(["a", "b"], ["a", "a"], ["a", "b"])).map((r) => r.name);
 * // ["accuracy", "macro avg", "weighted avg"]
 * ```
 */
export function averageRows(m: ClassificationMetrics): ReportRow[] {
  const microIsAccuracy = m.invalidPredictions === 0 && m.unknownGold === 0;
  return [
    { name: microIsAccuracy ? "accuracy" : "micro avg", ...m.micro },
    { name: "macro avg", ...m.macro },
    { name: "weighted avg", ...m.weighted },
  ];
}

/**
 * The `classification_report` text, as scikit-learn prints it with
 * `digits` decimals (the seed used 3).
 *
 * @example
 * ```ts
 * import { classificationMetrics, classificationReport } from "./classification.ts";
 * console.log(classificationReport(classificationMetrics(["a", "b"], ["a", "b"], ["a", "b"])));
 * ```
 */
export function classificationReport(m: ClassificationMetrics, digits = 3): string {
  const rows = m.perLabel.map((s) => ({ ...s, name: s.label }));
  return classificationReportText(rows, averageRows(m), digits);
}
