/**
 * The label set of a classification task and the strings that name labels.
 *
 * - From `--labels`: the order given, each label once (a repeat is an error).
 * - From the training data: the distinct labels sorted by code unit, as
 *   Python's `sorted` orders them; for arXiv this is the seed's demo list
 *   `['cs.CL', 'cs.CV', 'cs.LG', 'hep-ph', 'quant-ph']`, and it is also the
 *   order HF `datasets`' `class_encode_column` gives. Sorting (rather than
 *   first-seen order) makes the set independent of how the file is shuffled.
 * - Multi-label gold and answers are comma-separated (`"cs.LG, stat.ML"`);
 *   a label therefore may not contain a comma in multi-label mode. The
 *   canonical answer lists labels in label-set order, joined by ", ".
 *
 * @module
 */

import { DataError } from "./errors.ts";

/**
 * Checks a label list given by the user (e.g. `--labels`): labels are
 * trimmed, none may be blank, none may repeat.
 *
 * @example
 * ```ts
 * import { parseLabelList } from "./labels.ts";
 * parseLabelList(["cs.CL", " cs.CV "]); // ["cs.CL", "cs.CV"]
 * ```
 */
export function parseLabelList(values: readonly string[], option = "--labels"): string[] {
  const labels = values.map((v) => v.trim());
  if (labels.length === 0) throw new DataError(`${option} is empty; name at least two labels`);
  const seen = new Set<string>();
  for (const label of labels) {
    if (label === "") throw new DataError(`${option} has a blank label; remove it`);
    if (seen.has(label)) throw new DataError(`${option} names ${JSON.stringify(label)} twice; list each label once`);
    seen.add(label);
  }
  return labels;
}

/**
 * Splits a multi-label cell or answer on commas, trimming each part and
 * dropping blank ones: `"a, b,"` is `["a", "b"]`.
 *
 * @example
 * ```ts
 * import { splitLabels } from "./labels.ts";
 * splitLabels("cs.LG, stat.ML"); // ["cs.LG", "stat.ML"]
 * ```
 */
export function splitLabels(cell: string): string[] {
  return cell.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * The label set seen in training gold strings: distinct labels sorted by code
 * unit (Python's `sorted`). With `multiLabel`, each gold string is split on
 * commas first.
 *
 * @example
 * ```ts
 * import { labelsFromGold } from "./labels.ts";
 * labelsFromGold(["quant-ph", "cs.CL", "cs.CL"]); // ["cs.CL", "quant-ph"]
 * labelsFromGold(["b, a", "c"], { multiLabel: true }); // ["a", "b", "c"]
 * ```
 */
export function labelsFromGold(gold: readonly string[], options: { multiLabel?: boolean } = {}): string[] {
  const set = new Set<string>();
  for (const g of gold) for (const l of options.multiLabel ? splitLabels(g) : [g]) set.add(l);
  return [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The canonical answer for a set of labels: label-set order, joined by ", ".
 *
 * @example
 * ```ts
 * import { formatLabels } from "./labels.ts";
 * formatLabels(["c", "a"], ["a", "b", "c"]); // "a, c"
 * ```
 */
export function formatLabels(chosen: readonly string[], labels: readonly string[]): string {
  const want = new Set(chosen);
  return labels.filter((l) => want.has(l)).join(", ");
}

/**
 * Checks that a label set can be used: at least two labels, and no commas in
 * multi-label mode (where a comma separates labels).
 *
 * @example
 * ```ts
 * import { checkLabelSet } from "./labels.ts";
 * checkLabelSet(["ham", "spam"], { multiLabel: false }); // no error
 * ```
 */
export function checkLabelSet(labels: readonly string[], options: { multiLabel?: boolean } = {}): void {
  if (labels.length < 2) {
    throw new DataError(
      `a classifier needs at least two labels, the label set is [${labels.join(", ")}]; add labels with --labels`,
    );
  }
  if (options.multiLabel) {
    const bad = labels.find((l) => l.includes(","));
    if (bad !== undefined) {
      throw new DataError(`label ${JSON.stringify(bad)} contains a comma, which separates labels in multi-label mode`);
    }
  }
}
