import assert from "node:assert/strict";
import { parseCsv } from "../lib/data/csv.ts";
import { DataError } from "../lib/data/errors.ts";
import { checkGold, examplesFromTable, joinTextFields, labelSet, readExamples } from "../lib/data/examples.ts";
import { formatLabels, labelsFromGold, parseLabelList, splitLabels } from "../lib/data/labels.ts";
import { shuffled } from "../lib/data/shuffle.ts";

const SEED_LABELS = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph"];
const arxiv5 = new URL("../../shared/data/arxiv5/", import.meta.url);
const haveArxiv5 = (() => {
  try {
    return Deno.statSync(new URL("train.csv", arxiv5)).isFile;
  } catch {
    return false;
  }
})();

/** Asserts `fn` throws a DataError with exactly `message`, on one line. */
function assertDataError(fn: () => unknown, message: string, what: string): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof DataError, `${what}: a DataError`);
    assert.equal(e.message, message, what);
    assert.ok(!e.message.includes("\n"), `${what}: one line`);
    return true;
  });
}

Deno.test("examples: text fields join as the seed's combine_text_fields does", () => {
  const cases: [(string | undefined)[], string][] = [
    [
      ["Attention Is All You Need", "We propose the Transformer."],
      "Attention Is All You Need. We propose the Transformer.",
    ],
    [["  padded title\n", " abstract without stop "], "padded title. abstract without stop."],
    [["", "only the abstract."], "only the abstract."],
    [[undefined, "short row"], "short row."],
    [["title only", "   "], "title only."],
    // The seed's rule verbatim: ". " joins whatever ends the field, and "." ends the text unless it is there.
    [["Is attention enough?", "No."], "Is attention enough?. No."],
    [["Title.", "Body"], "Title.. Body."],
    [["Wow!"], "Wow!."],
    [["", undefined, " "], ""],
  ];
  for (const [fields, want] of cases) assert.equal(joinTextFields(fields), want, JSON.stringify(fields));
});

Deno.test("examples: rows become examples; a missing column or a row without text is one clear line", () => {
  const table = parseCsv(
    "title,abstract,label_name,extra\nT1,A1,  cs.CL ,x\n,A2,cs.CV\nT3,,,\n",
    "train.csv",
  );
  assert.deepEqual(examplesFromTable(table, { textFields: ["title", "abstract"], labelColumn: "label_name" }), [
    { line: 2, text: "T1. A1.", gold: "cs.CL" },
    { line: 3, text: "A2.", gold: "cs.CV" },
    { line: 4, text: "T3.", gold: "" },
  ]);
  assert.deepEqual(examplesFromTable(table, { textFields: ["abstract", "title"], labelColumn: null })[0], {
    line: 2,
    text: "A1. T1.",
    gold: null,
  });
  assertDataError(
    () => examplesFromTable(table, { textFields: ["title", "body"], labelColumn: "label_name" }),
    'train.csv: no column "body" (--text_fields); the header has "title", "abstract", "label_name", "extra"',
    "missing text column",
  );
  assertDataError(
    () => examplesFromTable(table, { textFields: ["title"], labelColumn: "label" }),
    'train.csv: no column "label" (--label_column); the header has "title", "abstract", "label_name", "extra"',
    "missing label column",
  );
  assertDataError(
    () => examplesFromTable(table, { textFields: ["extra"], labelColumn: "label_name" }),
    "train.csv: line 3: the text fields (extra) are all blank; fill one in or remove the row",
    "blank text",
  );
  assertDataError(
    () => examplesFromTable(table, { textFields: [], labelColumn: "label_name" }),
    "--text_fields is empty; name at least one text column",
    "no text fields",
  );
});

Deno.test("examples: the label set comes from --labels in order, or sorted from the training data", () => {
  const ex = (gold: string) => ({ line: 2, text: "t", gold });
  assert.deepEqual(labelSet(["quant-ph", "cs.LG", "cs.CL", "cs.LG", "hep-ph", "cs.CV"].map(ex)), SEED_LABELS);
  assert.deepEqual(labelSet([ex("b")], { labels: ["spam", " ham "] }), ["spam", "ham"]);
  assert.deepEqual(labelSet(["b, a", "c"].map(ex), { multiLabel: true }), ["a", "b", "c"]);
  const errors: [() => unknown, string][] = [
    [() => labelSet([ex("a")], { labels: ["a", "b", "a"] }), '--labels names "a" twice; list each label once'],
    [() => labelSet([ex("a")], { labels: ["a", " "] }), "--labels has a blank label; remove it"],
    [() => labelSet([ex("a")], { labels: [] }), "--labels is empty; name at least two labels"],
    [
      () => labelSet([ex("a"), ex("a")]),
      "a classifier needs at least two labels, the label set is [a]; add labels with --labels",
    ],
    [
      () => labelSet([ex("a")], { labels: ["a", "b,c"], multiLabel: true }),
      'label "b,c" contains a comma, which separates labels in multi-label mode',
    ],
  ];
  for (const [fn, message] of errors) assertDataError(fn, message, message);
});

Deno.test("examples: a training label outside the set names the file and the line", () => {
  const train = [{ line: 2, text: "t", gold: "ham" }, { line: 5, text: "u", gold: "eggs" }];
  checkGold(train.slice(0, 1), ["ham", "spam"], "train.csv");
  assertDataError(
    () => checkGold(train, ["ham", "spam"], "train.csv"),
    'train.csv: line 5: label "eggs" is not one of ham, spam; fix the row or add it to --labels',
    "unknown label",
  );
  assertDataError(
    () => checkGold([{ line: 3, text: "t", gold: "" }], ["ham", "spam"], "train.csv"),
    "train.csv: line 3: the label is blank; fill it in or remove the row",
    "blank label",
  );
  assertDataError(
    () => checkGold([{ line: 7, text: "t", gold: "a, z" }], ["a", "b"], "val.csv", { multiLabel: true }),
    'val.csv: line 7: label "z" is not one of a, b; fix the row or add it to --labels',
    "unknown part of a multi-label gold",
  );
  assertDataError(
    () => checkGold([{ line: 2, text: "t", gold: null }], ["a", "b"], "train.csv"),
    "train.csv: training needs gold labels; name the column with --label_column",
    "no label column",
  );
});

Deno.test("examples: multi-label cells split on commas and print in label-set order", () => {
  assert.deepEqual(splitLabels(" cs.LG ,stat.ML,, "), ["cs.LG", "stat.ML"]);
  assert.equal(formatLabels(["stat.ML", "cs.LG"], ["cs.LG", "math.OC", "stat.ML"]), "cs.LG, stat.ML");
  assert.deepEqual(labelsFromGold(["b", "a", "B"]), ["B", "a", "b"], "code-unit order, as Python's sorted");
  assert.deepEqual(parseLabelList(["x", "y"]), ["x", "y"]);
});

Deno.test("examples: the sorted label set does not depend on the row order", () => {
  const golds = ["hep-ph", "cs.CV", "quant-ph", "cs.CL", "cs.LG", "cs.CV"];
  for (const seed of [1, 2, 3]) assert.deepEqual(labelsFromGold(shuffled(golds, seed)), SEED_LABELS, `seed ${seed}`);
});

Deno.test({
  name: "examples: arxiv5 with the seed's defaults gives the seed's label list" +
    (haveArxiv5 ? "" : " (skipped: ../shared/data/arxiv5 is not here)"),
  ignore: !haveArxiv5,
  fn: async () => {
    const options = { textFields: ["title", "abstract"], labelColumn: "label_name" };
    const test = await readExamples(new URL("test.csv", arxiv5).pathname, options);
    assert.equal(test.length, 725);
    const labels = labelSet(test);
    assert.deepEqual(labels, SEED_LABELS);
    checkGold(test, labels, "test.csv");
    assert.ok(test.every((e) => e.text.endsWith(".") && !e.text.includes("\n")));
  },
});
