import assert from "node:assert/strict";
import { DOMParser } from "linkedom";
import { parseCsv } from "../lib/data/csv.ts";
import { classificationMetrics } from "../lib/metrics/classification.ts";
import { multiLabelMetrics } from "../lib/metrics/multilabel.ts";
import { formatFixed } from "../lib/metrics/sklearn_format.ts";
import { reportHtml, writeReportHtml } from "../lib/report/html.ts";
import { type Metrics, type MetricsJson, writeMetricsJson } from "../lib/report/metrics_json.ts";
import { predictionsCsv, writePredictionsCsv } from "../lib/report/predictions.ts";
import { outputPaths, writeRunOutputs } from "../lib/report/outputs.ts";
import { resultsText, writeResults } from "../lib/report/results.ts";
import { parseTrainingLog } from "../lib/report/training_log.ts";
import { writeFileAtomic } from "../lib/util/atomic_write.ts";
import { Rng } from "./reference/random.ts";

/** The little of linkedom's DOM these tests read. */
interface Node {
  tagName: string;
  textContent: string | null;
  attributes: ArrayLike<{ name: string; value: string }>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): Node | null;
  querySelectorAll(selector: string): Iterable<Node>;
}

function parse(html: string): Node {
  return new DOMParser().parseFromString(html, "text/html") as unknown as Node;
}

/** Random single-label predictions over `labels`, some invalid and some with a gold label outside the set. */
function randomRun(rng: Rng, labels: string[], rows: number): Metrics {
  const gold: string[] = [], pred: (string | null)[] = [];
  for (let i = 0; i < rows; i++) {
    const t = labels[rng.int(0, labels.length - 1)];
    gold.push(rng.next() < 0.03 ? "not-a-label" : t);
    const r = rng.next();
    pred.push(r < 0.05 ? null : r < 0.7 ? t : labels[rng.int(0, labels.length - 1)]);
  }
  return classificationMetrics(gold, pred, labels);
}

// Records as lib/train/metrics_log.ts writes them: only the loss and accuracy fields are drawn.
const TRAINING_LOG = Array.from({ length: 30 }, (_, i) =>
  JSON.stringify({
    type: "train",
    step: i + 1,
    epoch: (i + 1) / 30,
    loss: 3 / (i + 1),
    learning_rate: 1e-4,
    grad_norm: 1.5,
    tokens: 4096,
    tokens_per_s: 900,
    mfu: null,
    time: 1700000000 + i,
  }))
  .concat([
    '{"type":"eval","step":15,"epoch":0.5,"eval_loss":0.4,"eval_accuracy":0.81,"time":1700000015}',
    '{"type":"eval","step":30,"epoch":1,"eval_loss":0.3,"eval_accuracy":0.9,"time":1700000030}',
  ])
  .join("\n");

Deno.test("report: predictions.csv round-trips texts with commas, quotes and newlines", async () => {
  const rows = [
    { text: 'He said "hi", then\nleft.', gold: "ham", pred: "ham", probabilities: [0.9, 0.1] },
    { text: "plain", gold: null, pred: null, probabilities: [0.5, 0.5] },
  ];
  const t = parseCsv(predictionsCsv(rows, ["ham", "spam"]), "predictions.csv");
  assert.deepEqual(t.columns, ["text", "gold", "pred", "valid", "prob_ham", "prob_spam"]);
  assert.deepEqual(t.rows.map((r) => r.values), [
    ['He said "hi", then\nleft.', "ham", "ham", "true", "0.9", "0.1"],
    ["plain", "", "", "false", "0.5", "0.5"],
  ]);
  const gen = parseCsv(predictionsCsv([{ text: "x", gold: "spam", pred: null, answer: "eggs" }], ["ham", "spam"]), "p");
  assert.deepEqual([gen.columns, gen.rows[0].values], [["text", "gold", "pred", "valid", "answer"], [
    "x",
    "spam",
    "",
    "false",
    "eggs",
  ]]);
  assert.throws(
    () => predictionsCsv([{ text: "x", gold: "a", pred: "a", probabilities: [1] }], ["a", "b"]),
    /prediction 0 has 1 probabilities for 2 labels/,
  );
  const dir = await Deno.makeTempDir();
  await writePredictionsCsv(`${dir}/predictions.csv`, rows, ["ham", "spam"]);
  assert.equal(await Deno.readTextFile(`${dir}/predictions.csv`), predictionsCsv(rows, ["ham", "spam"]));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: outputs are written atomically: no half files, nothing left behind on failure", async () => {
  const dir = await Deno.makeTempDir();
  const m = classificationMetrics(["a", "b"], ["a", "a"], ["a", "b"]);
  await writeFileAtomic(`${dir}/results.txt`, "old");
  await writeResults(`${dir}/results.txt`, m);
  await writeMetricsJson(`${dir}/metrics.json`, m, { decode: "generate" });
  await writeReportHtml(`${dir}/report.html`, { metrics: m });
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, ["metrics.json", "report.html", "results.txt"], "no temporary files remain");
  assert.match(await Deno.readTextFile(`${dir}/results.txt`), /^Accuracy: {3}0\.500\n/);
  const json: MetricsJson = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
  assert.deepEqual(json.run, { decode: "generate" });
  await assert.rejects(
    writeFileAtomic(`${dir}/missing/x.txt`, "x"),
    new RegExp(`^Error: cannot write ${dir}/missing/x.txt: `),
  );
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), names);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: a run's outputs are all written, or none when one cannot be built", async () => {
  const dir = await Deno.makeTempDir();
  const m = classificationMetrics(["ham", "spam"], ["ham", "ham"], ["ham", "spam"]);
  const bad = [{ text: "x", gold: "ham", pred: "ham", probabilities: [1] }, { text: "y", gold: "spam", pred: "ham" }];
  await assert.rejects(writeRunOutputs(outputPaths(dir), { metrics: m, predictions: bad }), RangeError);
  assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  await assert.rejects(
    writeRunOutputs(outputPaths(dir), { metrics: m }),
    /no predictions to write to .*predictions\.csv/,
  );
  const good = bad.map(({ text, gold, pred }) => ({ text, gold, pred }));
  const written = await writeRunOutputs(outputPaths(dir), { metrics: m, predictions: good, run: { decode: "score" } });
  assert.deepEqual(written.map((p) => p.slice(dir.length + 1)), [
    "results.txt",
    "metrics.json",
    "report.html",
    "predictions.csv",
  ]);
  assert.equal(await Deno.readTextFile(`${dir}/results.txt`), resultsText(m));
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`)).run.decode, "score");
  assert.deepEqual(Object.keys(outputPaths(dir, null)), ["results", "metricsJson", "reportHtml"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: report.html shows the numbers of metrics.json and needs nothing from outside", async () => {
  const rng = new Rng();
  const labels = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph"];
  const m = randomRun(rng, labels, rng.int(200, 900));
  const dir = await Deno.makeTempDir();
  const training = parseTrainingLog(TRAINING_LOG, "metrics.jsonl");
  await writeMetricsJson(`${dir}/metrics.json`, m);
  await writeReportHtml(`${dir}/report.html`, { metrics: m, training, run: { model: "<tiny & test>" } });
  const json: MetricsJson = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
  const doc = parse(await Deno.readTextFile(`${dir}/report.html`));
  const what = `seed ${rng.seed}`;

  const scores = [...doc.querySelectorAll("#scores [data-metric]")];
  assert.deepEqual(scores.map((c) => c.getAttribute("data-metric")), [
    "accuracy",
    "f1_micro",
    "f1_macro",
    "f1_weighted",
    "examples",
    "invalid_predictions",
    "unknown_gold",
  ]);
  for (const cell of scores) {
    const key = cell.getAttribute("data-metric") as keyof MetricsJson;
    const value = Number(cell.getAttribute("data-value"));
    assert.equal(value, json[key], `${what}: ${key}`);
    const shown = Number.isInteger(value) && key !== "accuracy" && !key.startsWith("f1")
      ? String(value)
      : formatFixed(value, 4);
    assert.equal(cell.textContent, shown, `${what}: ${key} as shown`);
  }
  const rows = [...doc.querySelectorAll("#per-label tbody tr")];
  assert.equal(rows.length, labels.length + 3, "labels, then micro/macro/weighted avg");
  for (const row of rows) {
    const name = row.getAttribute("data-label") ?? row.getAttribute("data-average")!;
    const entry = json.report[name] as unknown as Record<string, number>;
    for (const cell of row.querySelectorAll("[data-metric]")) {
      const key = cell.getAttribute("data-metric")!;
      assert.equal(Number(cell.getAttribute("data-value")), entry[key], `${what}: ${name} ${key}`);
      assert.equal(cell.textContent, key === "support" ? String(entry[key]) : formatFixed(entry[key], 4));
    }
  }
  const cells = [...doc.querySelectorAll("#confusion g.cell")];
  const columns = [...labels, ...(json.invalid_predictions > 0 ? ["(invalid)"] : [])];
  assert.equal(cells.length, labels.length * columns.length);
  for (const cell of cells) {
    const t = labels.indexOf(cell.getAttribute("data-true")!);
    const p = columns.indexOf(cell.getAttribute("data-pred")!);
    const want = p < labels.length ? json.confusion_matrix![t][p] : json.invalid_by_label![labels[t]];
    assert.equal(Number(cell.getAttribute("data-value")), want, `${what}: cell ${t},${p}`);
    assert.equal(cell.querySelector("text")!.textContent, String(want));
  }
  const series = new Map(
    [...doc.querySelectorAll("#training polyline")].map((
      s,
    ) => [s.getAttribute("data-series"), JSON.parse(s.getAttribute("data-points")!)]),
  );
  assert.deepEqual([...series.keys()], ["loss", "eval_loss", "eval_accuracy"]);
  assert.deepEqual(series.get("loss"), training.filter((r) => "loss" in r).map((r) => [r.step, r.loss]));
  assert.deepEqual(series.get("eval_accuracy"), [[15, 0.81], [30, 0.9]]);
  assert.equal(doc.querySelector('[data-run="model"]')!.textContent, "<tiny & test>");

  // Self-contained: nothing to fetch, no script.
  for (const el of doc.querySelectorAll("*")) {
    assert.ok(!["script", "link", "img", "iframe", "object", "embed"].includes(el.tagName.toLowerCase()), el.tagName);
    for (const a of Array.from(el.attributes)) {
      assert.ok(!["src", "href", "srcset"].includes(a.name), `${el.tagName} has ${a.name}`);
      if (a.name !== "xmlns") assert.ok(!/https?:|url\(/.test(a.value), `${el.tagName} ${a.name}=${a.value}`);
    }
  }
  assert.ok(!/url\(|@import/.test(doc.querySelector("style")!.textContent!));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: a multi-label report shows per-label counts; no log says so", () => {
  const m = multiLabelMetrics([["a", "b"], ["b"]], [["a"], ["b"]], ["a", "b"]);
  const doc = parse(reportHtml({ metrics: m }));
  const counts = [...doc.querySelectorAll("#confusion tr[data-label]")].map((r) =>
    [...r.querySelectorAll("[data-metric]")].map((c) => Number(c.getAttribute("data-value")))
  );
  assert.deepEqual(counts, [[1, 0, 0, 1], [0, 0, 1, 1]]);
  assert.equal(
    [...doc.querySelectorAll("#per-label tbody tr")].length,
    2 + 4,
    "labels, then micro/macro/weighted/samples",
  );
  assert.match(doc.querySelector("#training")!.textContent!, /No training log/);
});

Deno.test("report: a bad metrics.jsonl line names the file and the line", () => {
  assert.throws(() => parseTrainingLog('{"step":1}\n\n{"loss":2}\n', "m.jsonl"), {
    message: 'm.jsonl: line 3: expected a JSON object with a numeric "step"',
  });
  assert.throws(() => parseTrainingLog("{oops", "m.jsonl"), /^DataError: m\.jsonl: line 1: not JSON: /);
});

const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "report: report.html renders in headless Chromium" + (chromium ? "" : " (skipped: no /usr/bin/chromium)"),
  ignore: !chromium,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const m = randomRun(new Rng(7), ["ham", "spam"], 50);
    await writeReportHtml(`${dir}/report.html`, { metrics: m, training: parseTrainingLog(TRAINING_LOG, "m.jsonl") });
    const out = await new Deno.Command(chromium!, {
      args: [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        `--user-data-dir=${dir}/profile`,
        `--screenshot=${dir}/shot.png`,
        "--window-size=1000,1400",
        `file://${dir}/report.html`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const png = await Deno.readFile(`${dir}/shot.png`);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
    // A blank page compresses to a few kB; tables, heatmap and curves take far more.
    assert.ok(png.length > 30_000, `screenshot is only ${png.length} bytes`);
    await Deno.remove(dir, { recursive: true });
  },
});
