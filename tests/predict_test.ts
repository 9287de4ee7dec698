import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { parseCsv } from "../lib/data/csv.ts";
import { sequenceLogits } from "../lib/model/generate.ts";
import { LlamaModel } from "../lib/model/llama.ts";
import { loadModel } from "../lib/model/load.ts";
import { decodeBatch, labelOfAnswer, softmax } from "../lib/predict/decode.ts";
import { predict, type PredictOptions } from "../lib/predict/predict.ts";
import { ExampleProgress } from "../lib/predict/progress.ts";
import { parseTrainedSettings } from "../lib/predict/trained_settings.ts";
import type { ProgressSink } from "../lib/ui/progress.ts";
import { assertClose } from "./reference/compare.ts";
import { Rng } from "./reference/random.ts";
import { STORIES_260K, storiesTokenizer } from "./reference/stories_tokenizer.ts";

const tokenizer = await storiesTokenizer();

Deno.test("predict: an answer is a label only when it equals one exactly (after trimming)", () => {
  const labels = ["ham", "spam", "cs.CL"];
  const cases: [string, boolean, string | null][] = [
    ["spam", false, "spam"],
    ["  ham\n", false, "ham"],
    ["Spam", false, null],
    ["spam.", false, null],
    ["ham spam", false, null],
    ["", false, null],
    ["cs.CL", false, "cs.CL"],
    ["spam, ham", true, "ham, spam"],
    ["cs.CL,spam", true, "spam, cs.CL"],
    ["spam, eggs", true, null],
    [" , ", true, null],
  ];
  for (const [answer, multi, want] of cases) {
    assert.equal(labelOfAnswer(answer, labels, multi), want, `${JSON.stringify(answer)} (multi-label ${multi})`);
  }
});

Deno.test("predict: softmax gives probabilities that sum to 1, in the ratio of the likelihoods, for any magnitude", () => {
  const rng = new Rng();
  for (const scale of [1e-3, 1, 50, 2000]) {
    const lp = Array.from({ length: rng.int(2, 7) }, () => -scale * rng.next());
    const p = softmax(lp);
    const sum = p.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `sum ${sum} (scale ${scale}, seed ${rng.seed})`);
    assert.ok(p.every((x) => x >= 0 && Number.isFinite(x)), `finite, seed ${rng.seed}`);
    const best = lp.indexOf(Math.max(...lp));
    assert.equal(p.indexOf(Math.max(...p)), best);
    if (scale <= 50) {
      assertClose([p[0] / p[best]], [Math.exp(lp[0] - lp[best])], 1e-9, `ratio (seed ${rng.seed})`);
    }
  }
});

Deno.test("predict: label scores through the KV cache equal the full forward; the likeliest label wins", async () => {
  const rng = new Rng();
  using backend = await openBackend("cpu");
  using loaded = await loadModel(STORIES_260K, backend, { tokenizer: false, progress: false });
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
  // Odd prompt lengths, three candidates of different lengths each ending in EOS (2).
  const prompts = [7, 13, 22].map((n) => [1, ...Array.from({ length: n - 1 }, () => rng.int(3, 511))]);
  const completions = [[rng.int(3, 511), 2], [rng.int(3, 511), rng.int(3, 511), 2], [rng.int(3, 511), 2]];
  const answers = decodeBatch(model, prompts, { mode: "score", labels: ["a", "b", "c"], completions });
  prompts.forEach((prompt, p) => {
    // log P(candidate | prompt) from one plain forward over prompt + candidate, then softmax over candidates.
    const logProbs = completions.map((c) => {
      const [logits] = sequenceLogits(model, [[...prompt, ...c]]);
      const V = loaded.config.vocabSize;
      let sum = 0;
      c.forEach((token, j) => {
        const row = logits.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
        sum += row[token] - lse;
      });
      return sum;
    });
    const want = softmax(logProbs);
    const got = answers[p].probabilities!;
    assertClose(got, want, 1e-4, `prompt ${p} probabilities (seed ${rng.seed})`);
    assert.equal(answers[p].pred, ["a", "b", "c"][want.indexOf(Math.max(...want))], `seed ${rng.seed}`);
  });
});

/** A folder with test.csv (text,label) and a template whose prompt does not depend on the label set. */
async function task(rows: [string, string][]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lorac-predict-" });
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  await Deno.writeTextFile(`${dir}/test.csv`, "text,label\n" + rows.map((r) => r.map(quote).join(",")).join("\n"));
  await Deno.writeTextFile(`${dir}/template.txt`, "{text}");
  return dir;
}

function options(dir: string, extra: Partial<PredictOptions>): PredictOptions {
  return {
    basePath: dir,
    textFields: ["text"],
    labelColumn: "label",
    templateFile: `${dir}/template.txt`,
    baseModelName: STORIES_260K,
    tokenizer,
    outputDir: `${dir}/out`,
    adapter: false,
    device: "cpu",
    progress: false,
    ...extra,
  };
}

const STORY_TEXTS = ["Once upon a time", "Once upon a time", "The cat sat", "Lily went to the park"];

Deno.test("predict: generate mode counts every answer that is no label as invalid, and matches labels exactly", async () => {
  // The base model continues each text with story words: first learn what it says.
  const first = await task(STORY_TEXTS.map((t) => [t, "x"]));
  const r1 = await predict(options(first, { labels: ["x", "y"], maxNewTokens: 3 }));
  const answers = r1.predictions.map((p) => p.answer!);
  assert.equal(r1.metrics.invalidPredictions, STORY_TEXTS.length, `answers ${JSON.stringify(answers)}`);
  assert.equal(r1.metrics.accuracy, 0);
  assert.equal(answers[0], answers[1], "greedy decoding is deterministic");

  // Make the first answer a label (the prompt ignores the label set): the rows that give it are valid and right.
  const second = await task(STORY_TEXTS.map((t) => [t, answers[0]]));
  const r2 = await predict(options(second, { labels: [answers[0], "zzz"], maxNewTokens: 3 }));
  const same = answers.filter((a) => a === answers[0]).length;
  assert.deepEqual(r2.predictions.map((p) => p.answer), answers, "same prompts, same answers");
  assert.equal(r2.metrics.invalidPredictions, STORY_TEXTS.length - same);
  assert.equal(r2.metrics.correct, same);
  const csv = parseCsv(await Deno.readTextFile(`${second}/out/predictions.csv`), "predictions.csv");
  assert.deepEqual(csv.columns, ["text", "gold", "pred", "valid", "answer"]);
  assert.deepEqual(csv.rows.map((r) => r.values[3]), answers.map((a) => String(a === answers[0])));
  const metrics = JSON.parse(await Deno.readTextFile(`${second}/out/metrics.json`));
  assert.equal(metrics.invalid_predictions, STORY_TEXTS.length - same);
  assert.equal(metrics.run.decode, "generate");

  // Multi-label: the same answers, each gold cell naming two labels; the rows that answered one are half right.
  const third = await task(STORY_TEXTS.map((t) => [t, `zzz, ${answers[0]}`]));
  const r3 = await predict(options(third, { labels: [answers[0], "zzz"], multiLabel: true, maxNewTokens: 3 }));
  assert.equal(r3.metrics.kind, "multi");
  assert.equal(r3.metrics.invalidPredictions, STORY_TEXTS.length - same);
  assert.equal(r3.metrics.accuracy, 0, "no answer names both labels");
  assert.equal(r3.metrics.perLabel[0].recall, same / STORY_TEXTS.length);
  assert.equal(r3.metrics.perLabel[0].precision, 1);
  await Deno.remove(third, { recursive: true });
  await Deno.remove(first, { recursive: true });
  await Deno.remove(second, { recursive: true });
});

Deno.test("predict: score mode always answers a label, with probabilities that sum to 1 in predictions.csv", async () => {
  const rng = new Rng();
  const words = "the girl dog sun tree ran happy park big little".split(" ");
  const rows: [string, string][] = Array.from({ length: 9 }, (_, i) => [
    Array.from({ length: rng.int(1, 12) }, () => words[rng.int(0, words.length - 1)]).join(" "),
    i === 4 ? "not-a-label" : ["happy", "big", "dog"][rng.int(0, 2)],
  ]);
  const dir = await task(rows);
  const r = await predict(options(dir, { labels: ["happy", "big", "dog"], decode: "score", batchTokens: 40 }));
  assert.equal(r.metrics.invalidPredictions, 0, `seed ${rng.seed}`);
  assert.equal(r.metrics.unknownGold, 1, "a gold label outside the set is counted, not an error");
  const csv = parseCsv(await Deno.readTextFile(`${dir}/out/predictions.csv`), "predictions.csv");
  assert.deepEqual(csv.columns, ["text", "gold", "pred", "valid", "prob_happy", "prob_big", "prob_dog"]);
  csv.rows.forEach(({ values }, i) => {
    const probs = values.slice(4).map(Number);
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9, `row ${i}: ${probs} (seed ${rng.seed})`);
    assert.equal(values[2], ["happy", "big", "dog"][probs.indexOf(Math.max(...probs))], `row ${i}: the argmax`);
    assert.equal(values[3], "true");
    assert.equal(values[0], `${rows[i][0]}.`, "rows keep the file's order whatever the batches");
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("predict: a bad option is one clear error before anything is loaded or written", async () => {
  const dir = await task([["a", "x"]]);
  const cases: [Partial<PredictOptions>, RegExp][] = [
    [{ decode: "beam" as "score" }, /decode must be one of generate, score, got beam/],
    [{ maxNewTokens: 0 }, /max_new_tokens must be a positive integer, got 0/],
    [{ decode: "score", multiLabel: true }, /--decode score ranks single labels/],
    [{ adapter: true }, /no trained adapter in .*out .*lorac train --output_dir/],
    [{ labels: ["x"] }, /at least two labels/],
  ];
  for (const [extra, message] of cases) {
    await assert.rejects(predict(options(dir, { labels: ["x", "y"], ...extra })), message, JSON.stringify(extra));
  }
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["template.txt", "test.csv"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("predict: training settings are read by field, and a field of the wrong type names the file", () => {
  const s = parseTrainedSettings({
    labels: ["ham", "spam"],
    template: "{text}\nlabel:",
    exemplars: [{ text: "Hi.", answer: "ham" }],
    textFields: ["subject", "body"],
    labelColumn: "category",
    multiLabel: false,
    maxSeqLength: 256,
    baseModelName: "/models/smol.gguf",
    tokenizer: null,
    loraR: 8,
  }, "out/training_args.json");
  assert.deepEqual(s.labels, ["ham", "spam"]);
  assert.equal(s.labelColumn, "category");
  assert.equal(s.maxSeqLength, 256);
  assert.equal(s.tokenizer, undefined, "null is no setting");
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ labels: "ham" }, /"labels" should be a list of labels/],
    [{ maxSeqLength: -1 }, /"maxSeqLength" should be a positive integer/],
    [{ exemplars: [{ text: 1 }] }, /"exemplars" should be a list of \{ text, answer \}/],
  ];
  for (const [json, message] of bad) {
    assert.throws(() => parseTrainedSettings(json, "out/training_args.json"), message);
    assert.throws(() => parseTrainedSettings(json, "out/training_args.json"), /^Error: out\/training_args\.json: /);
  }
});

/** A sink that records what is drawn. */
function sink(terminal: boolean): { sink: ProgressSink; writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    sink: { isTerminal: () => terminal, writeSync: (p) => (writes.push(new TextDecoder().decode(p)), p.length) },
  };
}

Deno.test("predict: the progress bar shows examples, examples/s and the ETA; a log gets a line per tenth", () => {
  let ms = 0;
  const log = sink(false);
  const bar = new ExampleProgress("predict", 40, { sink: log.sink, now: () => ms });
  ms = 2000;
  bar.add(8);
  assert.equal(bar.line(), "predict 8/40 |████░░░░░░░░░░░░░░░░| 20% 4.0 ex/s ETA 8s");
  ms = 8000;
  bar.add(32);
  assert.equal(bar.line(), "predict 40/40 |████████████████████| 100% 5.0 ex/s in 8s");
  bar.finish();
  assert.equal(log.writes.length, 2, "one line for the first tenths, one for the end");

  const term = sink(true);
  let t = 0;
  const live = new ExampleProgress("predict", 1000, { sink: term.sink, now: () => t, intervalMs: 100 });
  for (let i = 0; i < 100; i++) {
    t += 10;
    live.add(10);
  }
  live.finish();
  assert.ok(term.writes.length >= 10 && term.writes.length <= 12, `${term.writes.length} redraws`);
  assert.ok(term.writes.every((w) => w.startsWith("\r")));
  assert.ok(term.writes.at(-1)!.endsWith("100% 1000 ex/s in 1s\x1b[K\n"), JSON.stringify(term.writes.at(-1)));
});
