import assert from "node:assert/strict";
import { classificationMetrics, classificationReport } from "../lib/metrics/classification.ts";
import { multiLabelMetrics, multiLabelReport } from "../lib/metrics/multilabel.ts";
import { formatFixed, formatIntMatrix } from "../lib/metrics/sklearn_format.ts";
import { resultsText } from "../lib/report/results.ts";

// The seed's published results.txt (its arXiv 5-label run), without the progress-bar line above it.
const SEED_RESULTS = `Accuracy:   0.938
F1 (micro): 0.938
F1 (macro): 0.950

Per-class report:
              precision    recall  f1-score   support

       cs.CL      0.914     0.963     0.938       432
       cs.CV      0.935     0.923     0.929       545
       cs.LG      0.917     0.890     0.903       536
      hep-ph      0.994     0.988     0.991       164
    quant-ph      0.986     0.990     0.988       293

    accuracy                          0.938      1970
   macro avg      0.949     0.951     0.950      1970
weighted avg      0.938     0.938     0.938      1970


Confusion matrix (rows = true, cols = pred):
[[416   6  10   0   0]
 [ 12 503  30   0   0]
 [ 27  29 477   0   3]
 [  0   0   1 162   1]
 [  0   0   2   1 290]]
`;
const SEED_LABELS = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph"];
const SEED_MATRIX = [[416, 6, 10, 0, 0], [12, 503, 30, 0, 0], [27, 29, 477, 0, 3], [0, 0, 1, 162, 1], [
  0,
  0,
  2,
  1,
  290,
]];

/** Gold and predicted labels that give `matrix`, row by row. */
function fromMatrix(matrix: number[][], labels: string[]): { gold: string[]; pred: string[] } {
  const gold: string[] = [], pred: string[] = [];
  matrix.forEach((row, t) =>
    row.forEach((n, p) => {
      for (let k = 0; k < n; k++) (gold.push(labels[t]), pred.push(labels[p]));
    })
  );
  return { gold, pred };
}

Deno.test("metrics: the seed's results.txt comes back character for character from its confusion matrix", () => {
  const { gold, pred } = fromMatrix(SEED_MATRIX, SEED_LABELS);
  const m = classificationMetrics(gold, pred, SEED_LABELS);
  assert.equal(resultsText(m), SEED_RESULTS);
  assert.deepEqual(m.confusion, SEED_MATRIX);
  assert.equal(m.correct, 416 + 503 + 477 + 162 + 290);
});

Deno.test("metrics: counts by hand, with an invalid answer and a gold label outside the set", () => {
  const m = classificationMetrics(
    ["ham", "ham", "spam", "spam", "eggs", "zzz"],
    ["ham", "spam", "spam", null, "spam", "ham"],
    ["ham", "spam", "eggs"],
  );
  assert.equal(m.examples, 6);
  assert.equal(m.correct, 2);
  assert.equal(m.accuracy, 2 / 6);
  assert.equal(m.invalidPredictions, 1);
  assert.deepEqual(m.invalidByLabel, [0, 1, 0]);
  assert.equal(m.unknownGold, 1);
  assert.deepEqual(m.confusion, [[1, 1, 0], [0, 1, 0], [0, 1, 0]]);
  // ham: tp 1, predicted 2 (one for the unknown gold), support 2; spam: tp 1, predicted 3, support 2; eggs: nothing.
  assert.deepEqual(m.perLabel, [
    { label: "ham", precision: 0.5, recall: 0.5, f1: 0.5, support: 2 },
    { label: "spam", precision: 1 / 3, recall: 0.5, f1: 0.4, support: 2 },
    { label: "eggs", precision: 0, recall: 0, f1: 0, support: 1 },
  ]);
  assert.deepEqual(m.micro, { precision: 2 / 5, recall: 2 / 5, f1: 0.4, support: 5 });
  assert.equal(m.macro.f1, (0.5 + 0.4 + 0) / 3);
  assert.equal(m.weighted.f1, (0.5 * 2 + 0.4 * 2) / 5);
  // scikit-learn prints "micro avg", not "accuracy", when some row fell outside the labels.
  assert.ok(classificationReport(m, 2).includes("\n   micro avg       0.40      0.40      0.40         5\n"));
  assert.match(resultsText(m), /Invalid answers \(no label; counted as wrong\): 1 of 6\n/);
  assert.match(resultsText(m), /Gold labels outside the label set \(counted as wrong\): 1\n$/);
  assert.throws(() => classificationMetrics(["a"], [], ["a", "b"]), /1 gold labels but 0 predictions/);
});

Deno.test("metrics: the report text is scikit-learn's (its output pasted here for a 2-digit case)", () => {
  const m = classificationMetrics(["ham", "ham", "spam", "spam", "eggs"], ["ham", "spam", "spam", null, "spam"], [
    "ham",
    "spam",
    "eggs",
  ]);
  assert.equal(
    classificationReport(m, 2),
    "              precision    recall  f1-score   support\n\n" +
      "         ham       1.00      0.50      0.67         2\n" +
      "        spam       0.33      0.50      0.40         2\n" +
      "        eggs       0.00      0.00      0.00         1\n\n" +
      "   micro avg       0.50      0.40      0.44         5\n" +
      "   macro avg       0.44      0.33      0.36         5\n" +
      "weighted avg       0.53      0.40      0.43         5\n",
  );
});

Deno.test("metrics: Python's fixed-point formatting, ties to even on the exact binary value", () => {
  const cases: [number, number, string][] = [
    [0.125, 2, "0.12"],
    [0.375, 2, "0.38"],
    [0.0625, 3, "0.062"],
    [0.9375, 3, "0.938"],
    [2.5, 0, "2"],
    [3.5, 0, "4"],
    [-0.125, 2, "-0.12"],
    [0.15, 1, "0.1"], // 0.15 is 0.1499999... in binary: no tie
    [1 / 3, 4, "0.3333"],
    [1, 3, "1.000"],
    [0, 2, "0.00"],
    [NaN, 3, "nan"],
  ];
  for (const [x, d, want] of cases) assert.equal(formatFixed(x, d), want, `format(${x}, ".${d}f")`);
});

Deno.test("metrics: integer matrices print as NumPy's str() (outputs pasted from NumPy 2.4)", () => {
  const wide = Array.from({ length: 3 }, (_, i) => Array.from({ length: 25 }, (_, j) => (i * 31 + j * 17) % 1000));
  const cases: [number[][], string][] = [
    [[[5, -12], [0, 7]], "[[  5 -12]\n [  0   7]]"],
    [[[1234567, 2]], "[[1234567       2]]"],
    [
      wide,
      "[[  0  17  34  51  68  85 102 119 136 153 170 187 204 221 238 255 272 289\n  306 323 340 357 374 391 408]\n" +
      " [ 31  48  65  82  99 116 133 150 167 184 201 218 235 252 269 286 303 320\n  337 354 371 388 405 422 439]\n" +
      " [ 62  79  96 113 130 147 164 181 198 215 232 249 266 283 300 317 334 351\n  368 385 402 419 436 453 470]]",
    ],
  ];
  for (const [m, want] of cases) assert.equal(formatIntMatrix(m), want);
});

Deno.test("metrics: multi-label per-label, micro/macro/weighted/samples and subset accuracy by hand", () => {
  const labels = ["a", "b", "c"];
  const m = multiLabelMetrics(
    [["a", "b"], ["b"], ["c"], ["a", "zzz"]],
    [["a", "b"], ["a", "b"], null, ["a", "eggs"]],
    labels,
  );
  assert.equal(m.correct, 1);
  assert.equal(m.accuracy, 0.25);
  assert.equal(m.invalidPredictions, 2, "null and an answer naming a non-label");
  assert.equal(m.unknownGold, 1);
  assert.deepEqual(m.counts, [{ tn: 1, fp: 1, fn: 1, tp: 1 }, { tn: 2, fp: 0, fn: 0, tp: 2 }, {
    tn: 3,
    fp: 0,
    fn: 1,
    tp: 0,
  }]);
  assert.deepEqual(m.perLabel.map((s) => [s.label, s.precision, s.recall, s.f1, s.support]), [
    ["a", 0.5, 0.5, 0.5, 2],
    ["b", 1, 1, 1, 2],
    ["c", 0, 0, 0, 1],
  ]);
  assert.deepEqual(m.micro, { precision: 3 / 4, recall: 3 / 5, f1: 6 / 9, support: 5 });
  // Rows: [a,b]/[a,b] 1,1,1; [b]/[a,b] 0.5,1,2/3; [c]/[] 0,0,0; [a]/[] 0,0,0.
  assert.deepEqual(m.samples, { precision: 1.5 / 4, recall: 2 / 4, f1: (1 + 2 / 3) / 4, support: 5 });
  assert.match(multiLabelReport(m), /\n samples avg {6}0\.375 {5}0\.500 {5}0\.417 {9}5\n$/);
  assert.match(resultsText(m), /^Accuracy: {3}0\.250\n[^]*Per-label counts \(tn fp fn tp\):\na {2}\[1 1 1 1\]\n/);
});
