/**
 * Multi-label metrics (each row has a set of labels), equal to
 * scikit-learn's on the label-indicator matrices: per-label precision,
 * recall, F1 and support; micro, macro, weighted and samples averages; the
 * subset accuracy (a row is right when its predicted set equals its gold
 * set); per-label true/false positive and negative counts (scikit-learn's
 * `multilabel_confusion_matrix`).
 *
 * An invalid answer (null: it named something that is no label) predicts
 * the empty set and is counted. A gold label outside the label set cannot
 * be scored: it is left out of the row's gold set and counted.
 *
 * @module
 */

import { averageScores, type LabelScores, type Scores, scoresFromCounts } from "./classification.ts";
import { classificationReportText, type ReportRow } from "./sklearn_format.ts";

/** A label's 2×2 confusion counts. */
export interface LabelCounts {
  /** Rows without the label, not predicted. */
  tn: number;
  /** Rows without the label, predicted. */
  fp: number;
  /** Rows with the label, not predicted. */
  fn: number;
  /** Rows with the label, predicted. */
  tp: number;
}

/** Everything measured on multi-label predictions. */
export interface MultiLabelMetrics {
  /** Multi-label metrics. */
  kind: "multi";
  /** The label set, in order. */
  labels: string[];
  /** Rows scored. */
  examples: number;
  /** Rows whose predicted set equals the gold set. */
  correct: number;
  /** Subset accuracy: correct / examples. */
  accuracy: number;
  /** Scores per label, in label order. */
  perLabel: LabelScores[];
  /** Micro average. */
  micro: Scores;
  /** Unweighted mean over labels. */
  macro: Scores;
  /** Mean over labels weighted by support. */
  weighted: Scores;
  /** Mean over rows of each row's precision, recall and F1. */
  samples: Scores;
  /** Per-label confusion counts, in label order. */
  counts: LabelCounts[];
  /** Answers that named something that is no label (scored as the empty set). */
  invalidPredictions: number;
  /** Gold labels outside the label set (left out of their rows' gold sets). */
  unknownGold: number;
}

/**
 * Scores multi-label predictions: `gold[i]` and `pred[i]` are label lists
 * (order and repeats do not matter); `pred[i] = null` is an invalid answer.
 * Labels of `pred` outside `labels` make the answer invalid.
 *
 * @example
 * ```ts
 * import { multiLabelMetrics } from "./multilabel.ts";
 * const m = multiLabelMetrics([["a", "b"], ["b"]], [["a", "b"], ["a"]], ["a", "b"]);
 * m.accuracy; // 0.5
 * m.perLabel[1].recall; // 0.5
 * ```
 */
export function multiLabelMetrics(
  gold: readonly (readonly string[])[],
  pred: readonly (readonly string[] | null)[],
  labels: readonly string[],
): MultiLabelMetrics {
  if (gold.length !== pred.length) {
    throw new RangeError(`${gold.length} gold label sets but ${pred.length} predictions; they must pair up`);
  }
  const known = new Set(labels);
  const counts: LabelCounts[] = labels.map(() => ({ tn: 0, fp: 0, fn: 0, tp: 0 }));
  const rowScores: Scores[] = [];
  let correct = 0, invalidPredictions = 0, unknownGold = 0;
  for (let i = 0; i < gold.length; i++) {
    const g = new Set(gold[i].filter((l) => known.has(l)));
    unknownGold += new Set(gold[i]).size - g.size;
    const answer = pred[i];
    const valid = answer !== null && answer.every((l) => known.has(l));
    if (!valid) invalidPredictions++;
    const p = new Set(valid ? answer : []);
    let tp = 0;
    labels.forEach((label, k) => {
      const inG = g.has(label), inP = p.has(label);
      if (inG && inP) (counts[k].tp++, tp++);
      else if (inG) counts[k].fn++;
      else if (inP) counts[k].fp++;
      else counts[k].tn++;
    });
    if (tp === g.size && tp === p.size) correct++;
    rowScores.push(scoresFromCounts(tp, p.size, g.size));
  }
  const perLabel = labels.map((label, k) => {
    const c = counts[k];
    return { label, ...scoresFromCounts(c.tp, c.tp + c.fp, c.tp + c.fn) };
  });
  const sum = (f: (c: LabelCounts) => number) => counts.reduce((a, c) => a + f(c), 0);
  const n = gold.length;
  const mean = (key: "precision" | "recall" | "f1") => rowScores.reduce((a, s) => a + s[key], 0) / Math.max(n, 1);
  return {
    kind: "multi",
    labels: [...labels],
    examples: n,
    correct,
    accuracy: n === 0 ? 0 : correct / n,
    perLabel,
    micro: scoresFromCounts(sum((c) => c.tp), sum((c) => c.tp + c.fp), sum((c) => c.tp + c.fn)),
    macro: averageScores(perLabel, false),
    weighted: averageScores(perLabel, true),
    samples: {
      precision: mean("precision"),
      recall: mean("recall"),
      f1: mean("f1"),
      support: sum((c) => c.tp + c.fn),
    },
    counts,
    invalidPredictions,
    unknownGold,
  };
}

/**
 * The report rows scikit-learn prints after the labels for multi-label data:
 * "micro avg", "macro avg", "weighted avg", "samples avg".
 *
 * @example
 * ```ts
 * import { multiLabelAverageRows, multiLabelMetrics } from "./multilabel.ts";
 * multiLabelAverageRows(multiLabelMetrics([["a"]], [["a"]], ["a", "b"])).length; // 4
 * ```
 */
export function multiLabelAverageRows(m: MultiLabelMetrics): ReportRow[] {
  return [
    { name: "micro avg", ...m.micro },
    { name: "macro avg", ...m.macro },
    { name: "weighted avg", ...m.weighted },
    { name: "samples avg", ...m.samples },
  ];
}

/**
 * The `classification_report` text for multi-label data, with `digits`
 * decimals.
 *
 * @example
 * ```ts
 * import { multiLabelMetrics, multiLabelReport } from "./multilabel.ts";
 * console.log(multiLabelReport(multiLabelMetrics([["a", "b"]], [["a"]], ["a", "b"])));
 * ```
 */
export function multiLabelReport(m: MultiLabelMetrics, digits = 3): string {
  const rows = m.perLabel.map((s) => ({ ...s, name: s.label }));
  return classificationReportText(rows, multiLabelAverageRows(m), digits);
}
