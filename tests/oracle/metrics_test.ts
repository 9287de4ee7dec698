// Our classification metrics against scikit-learn 1.9 called as the seed's metrics.py calls it (label indices,
// labels=range(n), zero_division=0): accuracy, F1 micro/macro/weighted, classification_report (text and dict), the
// confusion matrix and NumPy's print of it; multi-label the same on indicator matrices; Python's float formatting.
import assert from "node:assert/strict";
import { classificationMetrics, classificationReport } from "../../lib/metrics/classification.ts";
import { multiLabelMetrics, multiLabelReport } from "../../lib/metrics/multilabel.ts";
import { formatFixed, formatIntMatrix } from "../../lib/metrics/sklearn_format.ts";
import { metricsJson } from "../../lib/report/metrics_json.ts";
import { Rng } from "../reference/random.ts";
import { runOracle } from "./harness.ts";

const rng = new Rng();
const seedNote = `seed ${rng.seed}`;

interface SingleCase {
  name: string;
  labels: string[];
  digits: number;
  y_true: number[];
  y_pred: number[];
}
interface MultiCase {
  name: string;
  labels: string[];
  digits: number;
  Y_true: number[][];
  Y_pred: number[][];
  invalid: boolean[];
}

/** Draws rows of an n-label task: mostly right, some confusions, some invalid answers / unknown gold labels. */
function singleCase(name: string, labels: string[], rows: number, digits: number, oddRate: number): SingleCase {
  const n = labels.length;
  const y_true: number[] = [], y_pred: number[] = [];
  for (let i = 0; i < rows; i++) {
    const t = rng.next() < oddRate ? -1 : rng.int(0, n - 1);
    const r = rng.next();
    y_true.push(t);
    y_pred.push(r < oddRate ? -2 : r < 0.6 && t >= 0 ? t : rng.int(0, n - 1));
  }
  return { name, labels, digits, y_true, y_pred };
}

function multiCase(name: string, labels: string[], rows: number, digits: number): MultiCase {
  const n = labels.length;
  const Y_true: number[][] = [], Y_pred: number[][] = [], invalid: boolean[] = [];
  for (let i = 0; i < rows; i++) {
    const t = labels.map(() => (rng.next() < 0.35 ? 1 : 0));
    if (!t.includes(1)) t[rng.int(0, n - 1)] = 1;
    const bad = rng.next() < 0.1;
    Y_true.push(t);
    Y_pred.push(bad ? labels.map(() => 0) : t.map((v) => (rng.next() < 0.2 ? 1 - v : v)));
    invalid.push(bad);
  }
  return { name, labels, digits, Y_true, Y_pred, invalid };
}

const arxiv = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph"];
const many = Array.from({ length: 25 }, (_, i) => `class-${i}`);
const single: SingleCase[] = [
  singleCase("arxiv_clean", arxiv, 731, 3, 0),
  singleCase("arxiv_invalid_unknown", arxiv, 517, 3, 0.07),
  singleCase("binary_digits2", ["ham", "spam"], 97, 2, 0.05),
  singleCase("long_names_digits4", ["a", "a label longer than the avg headings", "b"], 61, 4, 0),
  // 25 labels and 3-digit counts: NumPy wraps each confusion-matrix row over several lines.
  singleCase("wrapped_matrix", many, 4001, 3, 0.01),
  // A label nobody predicts and a label without support: the zero_division paths.
  { name: "zero_division", labels: ["x", "y", "z"], digits: 3, y_true: [0, 0, 1, 1, 0], y_pred: [0, 1, 1, 0, 1] },
];
const multi: MultiCase[] = [
  multiCase("multi_4", ["cs.AI", "cs.LG", "stat.ML", "math.OC"], 203, 3),
  multiCase("multi_2_digits2", ["red", "blue"], 41, 2),
];
const floats = [0.125, 0.375, 0.0625, 0.9375, 2.5, 0.5, 1 / 3, 2 / 3, 0.9995, 0.12345, 1e-9, 0, 1, 0.8125, 0.15];
const floatDigits = [0, 1, 2, 3, 4];

function labelName(labels: string[], i: number, outside: string): string {
  return i >= 0 ? labels[i] : outside;
}

function assertNear(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want)), `${what}: ours ${got}, sklearn ${want}`);
}

function assertReportDict(got: Record<string, unknown>, want: Record<string, unknown>, what: string): void {
  assert.deepEqual(Object.keys(got), Object.keys(want), `${what}: report keys`);
  for (const [key, w] of Object.entries(want)) {
    const g = got[key];
    if (typeof w === "number") assertNear(g as number, w, `${what} ${key}`);
    else {
      for (const [k, v] of Object.entries(w as Record<string, number>)) {
        assertNear((g as Record<string, number>)[k], v, `${what} ${key}.${k}`);
      }
    }
  }
}

Deno.test(`metrics oracle: ours equal scikit-learn's (${seedNote})`, async () => {
  const oracle = await runOracle(
    "metrics_oracle.py",
    { cases: [...single, ...multi], floats, float_digits: floatDigits },
    {},
  );
  const results = oracle.params.cases as Record<string, Record<string, unknown>>;
  for (const c of single) {
    const want = results[c.name];
    const gold = c.y_true.map((i) => labelName(c.labels, i, "<unknown gold>"));
    const pred = c.y_pred.map((i) => (i >= 0 ? c.labels[i] : null));
    const m = classificationMetrics(gold, pred, c.labels);
    const what = `${c.name} (${seedNote})`;
    assertNear(m.accuracy, want.accuracy as number, `${what} accuracy`);
    assertNear(m.micro.f1, want.f1_micro as number, `${what} f1 micro`);
    assertNear(m.macro.f1, want.f1_macro as number, `${what} f1 macro`);
    assertNear(m.weighted.f1, want.f1_weighted as number, `${what} f1 weighted`);
    assert.equal(classificationReport(m, c.digits), want.report_text, `${what}: report text`);
    assertReportDict(metricsJson(m).report, want.report_dict as Record<string, unknown>, what);
    assert.deepEqual(m.confusion, want.confusion, `${what}: confusion matrix`);
    assert.equal(formatIntMatrix(m.confusion), want.confusion_str, `${what}: NumPy print of the matrix`);
  }
  for (const c of multi) {
    const want = results[c.name];
    const sets = (rows: number[][]) => rows.map((r) => c.labels.filter((_, k) => r[k] === 1));
    const pred = sets(c.Y_pred).map((p, i) => (c.invalid[i] ? null : p));
    const m = multiLabelMetrics(sets(c.Y_true), pred, c.labels);
    const what = `${c.name} (${seedNote})`;
    assertNear(m.accuracy, want.accuracy as number, `${what} subset accuracy`);
    assertNear(m.micro.f1, want.f1_micro as number, `${what} f1 micro`);
    assertNear(m.macro.f1, want.f1_macro as number, `${what} f1 macro`);
    assertNear(m.weighted.f1, want.f1_weighted as number, `${what} f1 weighted`);
    assert.equal(multiLabelReport(m, c.digits), want.report_text, `${what}: report text`);
    assertReportDict(metricsJson(m).report, want.report_dict as Record<string, unknown>, what);
    assert.deepEqual(m.counts.map((k) => [[k.tn, k.fp], [k.fn, k.tp]]), want.confusion, `${what}: per-label counts`);
  }
  const formatted = oracle.params.formatted as string[][];
  floats.forEach((x, i) =>
    floatDigits.forEach((d, j) => assert.equal(formatFixed(x, d), formatted[i][j], `format(${x}, ".${d}f")`))
  );
});
