/**
 * arxiv5 accuracy with SmolLM2-135M-Instruct on the CPU: train LoRA
 * adapters on ../shared/data/arxiv5/train.csv (all of it, or a stated
 * class-balanced subset), pick the best checkpoint on validation.csv (or a
 * subset; greedy answers), then predict test.csv with the best
 * adapters in both decoding modes and print accuracy, micro / macro F1, the
 * confusion matrix and the wall times, beside a naive-Bayes word-count
 * baseline trained on the same subset and on all of train.csv, and a
 * TF-IDF linear SVM (bench/tfidf_svm.py, with the oracle venv's
 * scikit-learn) trained on all of train.csv.
 *
 *   deno task bench:accuracy       the default run: all rows, LoRA on layers 22-29, 2 epochs (~62 min on 2 cores)
 *   deno task bench:accuracy --layers_to_transform 0-29    the best run: LoRA on every layer (~2 h)
 *   deno task bench:accuracy --train_per_label 20 --val_n 20 --test_n 20 --max_seq_length 96   a quick check
 *
 * `--train_per_label 0` and `--test_n 0` mean all rows.
 *
 * Everything lorac writes (subset CSVs, adapters, checkpoints, logs,
 * results.txt and report.html per mode) goes under --out_dir (default
 * build/bench/accuracy); the figures also go to accuracy.json there.
 *
 * @module
 */

import { stringify } from "csv-stringify/sync";
import { layerList } from "../cli/options.ts";
import { buildCpu, buildDir } from "../cuda/build.ts";
import { columnIndex, readCsv } from "../lib/data/csv.ts";
import { shuffled } from "../lib/data/shuffle.ts";
import { classificationMetrics } from "../lib/metrics/classification.ts";
import { formatIntMatrix } from "../lib/metrics/sklearn_format.ts";
import { smollm2Gguf } from "../lib/model/default_model.ts";
import { predict } from "../lib/predict/predict.ts";
import { train } from "../lib/train/trainer.ts";
import { writeFileAtomic } from "../lib/util/atomic_write.ts";
import { fitNaiveBayes, predictNaiveBayes } from "./naive_bayes.ts";
import { run, torchPython } from "./peak.ts";
import { benchFlags } from "./flags.ts";

const DATA = new URL("../../shared/data/arxiv5/", import.meta.url).pathname;
const TEXT_FIELDS = ["title", "abstract"];
const LABEL_COLUMN = "label_name";

/** The run's settings; the defaults are the stated run of BENCHMARKS.md. */
const FLAGS = {
  train_per_label: { type: "string", default: "0" },
  val_n: { type: "string", default: "725" },
  test_n: { type: "string", default: "0" },
  max_seq_length: { type: "string", default: "192" },
  lora_r: { type: "string", default: "16" },
  lora_alpha: { type: "string", default: "32" },
  lora_dropout: { type: "string", default: "0" },
  layers_to_transform: { type: "string", default: "22-29" },
  learning_rate: { type: "string", default: "1e-3" },
  num_train_epochs: { type: "string", default: "2" },
  batch_tokens: { type: "string", default: "2048" },
  evals: { type: "string", default: "4" },
  decode: { type: "string", default: "generate,score" },
  seed: { type: "string", default: "42" },
  threads: { type: "string" },
  model: { type: "string" },
  out_dir: { type: "string" },
} as const;

interface Table {
  columns: string[];
  rows: string[][];
}

/** The rows of `table` whose label is `label`, shuffled by `seed`, at most `n` (0: all). */
function sample(table: Table, label: string, n: number, seed: number): string[][] {
  const at = table.columns.indexOf(LABEL_COLUMN);
  const rows = shuffled(table.rows.filter((r) => r[at] === label), seed);
  return n > 0 ? rows.slice(0, n) : rows;
}

async function readTable(name: string): Promise<Table> {
  const t = await readCsv(`${DATA}${name}`);
  columnIndex(t, LABEL_COLUMN, "--label_column");
  return { columns: t.columns, rows: t.rows.map((r) => r.values) };
}

async function writeTable(path: string, table: Table): Promise<void> {
  await writeFileAtomic(path, stringify([table.columns, ...table.rows]));
}

function textOf(table: Table, row: string[]): string {
  return TEXT_FIELDS.map((f) => row[table.columns.indexOf(f)]).filter((s) => s.trim() !== "").join(". ");
}

/** Naive-Bayes test accuracy and macro F1 when trained on `trainRows` of `train`. */
function naiveBayes(train: Table, trainRows: string[][], test: Table, labels: string[]) {
  const at = train.columns.indexOf(LABEL_COLUMN);
  const nb = fitNaiveBayes(trainRows.map((r) => textOf(train, r)), trainRows.map((r) => r[at]), labels);
  const predicted = test.rows.map((r) => predictNaiveBayes(nb, textOf(test, r)));
  const m = classificationMetrics(test.rows.map((r) => r[at]), predicted, labels);
  return { accuracy: m.accuracy, macroF1: m.macro.f1 };
}

/** The TF-IDF linear SVM's scores and its label for each test row, in file order. */
interface SvmResult {
  accuracy: number;
  macroF1: number;
  predicted: string[];
}

/** The TF-IDF linear-SVM baseline (bench/tfidf_svm.py) on two CSVs, or null without the oracle venv's scikit-learn. */
async function tfidfSvm(trainCsv: string, testCsv: string): Promise<SvmResult | null> {
  const python = await torchPython();
  if (python === null) return null;
  const script = new URL("tfidf_svm.py", import.meta.url).pathname;
  const out = JSON.parse(await run(python, [script, trainCsv, testCsv, LABEL_COLUMN, ...TEXT_FIELDS]));
  return { accuracy: out.accuracy, macroF1: out.macro_f1, predicted: out.predicted };
}

/**
 * How two classifiers' test errors overlap: rows both get wrong, and the
 * share of rows at least one gets right (the ceiling of any vote between them).
 */
function errorOverlap(gold: readonly string[], a: readonly (string | null)[], b: readonly string[]) {
  const n = gold.length;
  const wrongA = gold.filter((g, i) => a[i] !== g).length;
  const wrongB = gold.filter((g, i) => b[i] !== g).length;
  const bothWrong = gold.filter((g, i) => a[i] !== g && b[i] !== g).length;
  return { wrongA, wrongB, bothWrong, eitherRight: (n - bothWrong) / n };
}

const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;

if (import.meta.main) {
  const f = benchFlags("bench:accuracy", Deno.args, FLAGS);
  const num = (k: keyof typeof FLAGS) => {
    const v = Number(f[k]);
    if (!Number.isFinite(v)) throw new Error(`--${k} ${f[k]}: give a number`);
    return v;
  };
  const seed = num("seed");
  const outDir = f.out_dir ?? `${buildDir()}/bench/accuracy`;
  await buildCpu();
  const model = f.model ?? await smollm2Gguf();
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${outDir}/data`, { recursive: true });

  // The subsets: the same number of rows of every label, drawn with the seed.
  const [trainAll, valAll, testAll] = await Promise.all(
    ["train.csv", "validation.csv", "test.csv"].map(readTable),
  );
  const labels = [...new Set(trainAll.rows.map((r) => r[trainAll.columns.indexOf(LABEL_COLUMN)]))].sort();
  const perLabel = (t: Table, n: number) => labels.flatMap((l) => sample(t, l, n, seed));
  const trainRows = shuffled(perLabel(trainAll, num("train_per_label")), seed);
  const valRows = shuffled(perLabel(valAll, Math.ceil(num("val_n") / labels.length)), seed);
  const testN = num("test_n");
  const testRows = testN > 0 ? shuffled(perLabel(testAll, Math.ceil(testN / labels.length)), seed) : testAll.rows;
  const test = { columns: testAll.columns, rows: testRows };
  await writeTable(`${outDir}/data/train.csv`, { columns: trainAll.columns, rows: trainRows });
  await writeTable(`${outDir}/data/validation.csv`, { columns: valAll.columns, rows: valRows });
  await writeTable(`${outDir}/data/test.csv`, test);
  const perLabelText = num("train_per_label") > 0 ? `${num("train_per_label")} per label` : "all";
  console.log(
    `arxiv5: ${trainRows.length} training rows (${perLabelText}), ` +
      `${valRows.length} validation, ${testRows.length} test; labels ${labels.join(", ")}`,
  );

  const nbSubset = naiveBayes(trainAll, trainRows, test, labels);
  const nbFull = naiveBayes(trainAll, trainAll.rows, test, labels);
  const svmFull = await tfidfSvm(`${DATA}train.csv`, `${outDir}/data/test.csv`);

  // Training: the evaluation steps spread over the run; the best by validation accuracy (greedy answers) is kept.
  const approxSteps = Math.ceil(
    trainRows.length * num("num_train_epochs") * num("max_seq_length") * 0.95 / num("batch_tokens"),
  );
  const trained = await train({
    basePath: `${outDir}/data`,
    outputDir: `${outDir}/run`,
    baseModelName: model,
    textFields: TEXT_FIELDS,
    labelColumn: LABEL_COLUMN,
    labels,
    maxSeqLength: num("max_seq_length"),
    loraR: num("lora_r"),
    loraAlpha: num("lora_alpha"),
    loraDropout: num("lora_dropout"),
    layersToTransform: f.layers_to_transform ? layerList("--layers_to_transform")(f.layers_to_transform) : null,
    learningRate: num("learning_rate"),
    numEpochs: num("num_train_epochs"),
    batchTokens: num("batch_tokens"),
    lrSchedulerType: "cosine",
    warmupRatio: 0.05,
    evalSteps: Math.max(1, Math.ceil(approxSteps / num("evals"))),
    saveSteps: 0,
    evalDecode: "generate",
    metricForBestModel: "eval_accuracy",
    seed,
    numThreads: f.threads ? num("threads") : undefined,
  });
  console.log(
    `trained ${trained.steps} steps in ${minutes(trained.seconds)}; best validation accuracy ` +
      `${trained.best?.value.toFixed(4)} at step ${trained.best?.step}`,
  );

  // The best adapters predict the test set (best/ holds the run's settings too: labels, prompt, max_seq_length).
  const best = `${outDir}/run/best`;
  const results = [];
  for (const decode of f.decode.split(",") as ("generate" | "score")[]) {
    const r = await predict({
      basePath: `${outDir}/data`,
      outputDir: best,
      resultsDir: `${outDir}/test-${decode}`,
      decode,
      numThreads: f.threads ? num("threads") : undefined,
    });
    if (r.metrics.kind !== "single") throw new Error("arxiv5 is single-label");
    const gold = r.predictions.map((p) => p.gold ?? "");
    const overlap = svmFull ? errorOverlap(gold, r.predictions.map((p) => p.pred), svmFull.predicted) : null;
    results.push({ decode, metrics: r.metrics, seconds: r.seconds, examplesPerSecond: r.examplesPerSecond, overlap });
  }

  console.log(`\n| model | decoding | test accuracy | micro F1 | macro F1 | wall time |`);
  console.log(`|---|---|---:|---:|---:|---:|`);
  for (const r of results) {
    const m = r.metrics;
    console.log(
      `| SmolLM2-135M + LoRA r=${num("lora_r")} (lorac) | ${r.decode} | ${m.accuracy.toFixed(4)} | ` +
        `${m.micro.f1.toFixed(4)} | ${m.macro.f1.toFixed(4)} | ${minutes(r.seconds)} |`,
    );
  }
  for (const [what, nb] of [["same subset", nbSubset], ["all 5800 rows", nbFull]] as const) {
    console.log(
      `| naive Bayes, word counts (${what}) | - | ${nb.accuracy.toFixed(4)} | ${nb.accuracy.toFixed(4)} | ` +
        `${nb.macroF1.toFixed(4)} | - |`,
    );
  }
  if (svmFull) {
    console.log(
      `| TF-IDF word + character n-grams, linear SVM (all 5800 rows) | - | ${svmFull.accuracy.toFixed(4)} | ` +
        `${svmFull.accuracy.toFixed(4)} | ${svmFull.macroF1.toFixed(4)} | - |`,
    );
  }
  console.log(`\ntraining: ${minutes(trained.seconds)} (${trained.steps} steps)`);
  for (const r of results) {
    console.log(`\nconfusion matrix, ${r.decode} (rows = true, cols = pred; ${labels.join(", ")}):`);
    console.log(formatIntMatrix(r.metrics.confusion));
    if (r.metrics.invalidPredictions > 0) console.log(`invalid answers: ${r.metrics.invalidPredictions}`);
    if (r.overlap) {
      console.log(
        `errors shared with the TF-IDF SVM: ${r.overlap.bothWrong} rows wrong in both (lorac ${r.overlap.wrongA}, ` +
          `SVM ${r.overlap.wrongB}); one of the two right on ${r.overlap.eitherRight.toFixed(4)}`,
      );
    }
  }
  const summary = {
    date: new Date().toISOString(),
    model,
    settings: f,
    rows: { train: trainRows.length, validation: valRows.length, test: testRows.length },
    training: { steps: trained.steps, seconds: trained.seconds, best: trained.best },
    test: results.map((r) => ({
      decode: r.decode,
      accuracy: r.metrics.accuracy,
      microF1: r.metrics.micro.f1,
      macroF1: r.metrics.macro.f1,
      confusion: r.metrics.confusion,
      invalid: r.metrics.invalidPredictions,
      seconds: r.seconds,
      examplesPerSecond: r.examplesPerSecond,
      errorsSharedWithSvm: r.overlap,
    })),
    naiveBayes: { subset: nbSubset, full: nbFull },
    tfidfSvm: svmFull && { accuracy: svmFull.accuracy, macroF1: svmFull.macroF1 },
  };
  await writeFileAtomic(`${outDir}/accuracy.json`, JSON.stringify(summary, null, 2) + "\n");
  console.log(`\nfigures: ${outDir}/accuracy.json`);
}
