import assert from "node:assert/strict";
import { parseCsv } from "../lib/data/csv.ts";
import type { MetricsJson } from "../lib/report/metrics_json.ts";
import { Rng } from "./reference/random.ts";
import { storiesHfFolder } from "./reference/stories_tokenizer.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const STORIES = new URL("../../shared/models/stories260K/", import.meta.url).pathname;

async function lorac(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

// A keyword decides the class; columns named unlike the seed's defaults, so predict must take them from training.
const KEYWORDS: Record<string, string> = { sun: "happy", tree: "big", dog: "friend" };
const FILLER = "the girl ran to play with ball park little boy saw bird in garden".split(" ");

function csv(rng: Rng, n: number, extra: string[] = []): string {
  const rows = Array.from({ length: n }, (_, i) => {
    const keyword = Object.keys(KEYWORDS)[i % 3];
    const words = Array.from({ length: rng.int(2, 6) }, () => FILLER[rng.int(0, FILLER.length - 1)]);
    // A comma inside a quoted field, as real CSVs have.
    return `${keyword} day,"${words.join(" ")}, ${keyword}",${KEYWORDS[keyword]}`;
  });
  return ["subject,body,category", ...rows, ...extra].join("\r\n") + "\r\n";
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("cli: train then predict with exactly the seed's flags, in both decode modes", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir({ prefix: "lorac-cli-" });
  const model = await storiesHfFolder(`${dir}/stories260K`);
  await Deno.writeTextFile(`${dir}/train.csv`, csv(rng, 12));
  await Deno.writeTextFile(`${dir}/validation.csv`, csv(rng, 3));
  await Deno.writeTextFile(`${dir}/test.csv`, csv(rng, 6, ['sun day,"a row whose label is unknown",eggs']));
  const out = `${dir}/adapter`;

  const t = await lorac(
    "train",
    ...["--base_path", dir, "--train_file", "train.csv", "--val_file", "validation.csv", "--test_file", "test.csv"],
    ...["--label_column", "category", "--text_fields", "subject", "body", "--base_model_name", model],
    ...["--output_dir", out],
  );
  assert.equal(t.code, 0, `${t.stderr} (seed ${rng.seed})`);
  assert.match(t.stdout, /^trained 3 steps in /, "3 epochs of one batch each (seed defaults)");
  for (const f of ["adapter_config.json", "adapter_model.safetensors", "training_args.json", "metrics.jsonl"]) {
    assert.ok(await exists(`${out}/${f}`), `train wrote ${f}`);
  }
  const adapterConfig = JSON.parse(await Deno.readTextFile(`${out}/adapter_config.json`));
  assert.equal(adapterConfig.r, 2, "the seed's lora_r");
  assert.equal(adapterConfig.peft_type, "LORA");

  for (const decode of ["generate", "score"]) {
    const csvName = `predictions_${decode}.csv`;
    const p = await lorac(
      "predict",
      ...["--base_path", dir, "--test_file", "test.csv", "--base_model_name", model, "--output_dir", out],
      ...["--save_csv", csvName, ...(decode === "score" ? ["--decode", "score"] : [])],
    );
    assert.equal(p.code, 0, `${decode}: ${p.stderr} (seed ${rng.seed})`);
    assert.match(p.stdout, /^Accuracy: {3}\d\.\d{3}\nF1 \(micro\): \d\.\d{3}\nF1 \(macro\): \d\.\d{3}\n/);
    assert.match(p.stderr, /predict 7\/7 .* ex\/s/, "the progress bar ends with the rate");
    const results = await Deno.readTextFile(`${out}/results.txt`);
    const metrics: MetricsJson = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
    const html = await Deno.readTextFile(`${out}/report.html`);
    const table = parseCsv(await Deno.readTextFile(`${out}/${csvName}`), csvName);

    // The labels, columns and prompt came from training_args.json: predict was given none of them.
    assert.deepEqual(metrics.labels, ["big", "friend", "happy"]);
    assert.equal(metrics.examples, 7);
    assert.equal(metrics.unknown_gold, 1, "a test label outside the set counts as wrong, not as an error");
    assert.equal(metrics.run?.decode, decode);
    assert.equal(metrics.run?.compute_dtype, "f32", "the CPU multiplies in f32 unless told otherwise");
    const rows = table.rows.map((r) => r.values);
    const valid = rows.filter((v) => v[3] === "true").length;
    assert.equal(metrics.invalid_predictions, rows.length - valid);
    assert.equal(metrics.accuracy, rows.filter((v) => v[1] === v[2]).length / rows.length);
    assert.ok(results.startsWith(`Accuracy:   ${metrics.accuracy.toFixed(3)}\n`));
    assert.ok(html.includes(`data-metric="accuracy" data-value="${metrics.accuracy}"`));
    if (decode === "generate") {
      assert.deepEqual(table.columns, ["text", "gold", "pred", "valid", "answer"]);
      rows.forEach((v) => assert.equal(v[3] === "true", ["big", "friend", "happy"].includes(v[4].trim())));
    } else {
      assert.deepEqual(table.columns, ["text", "gold", "pred", "valid", "prob_big", "prob_friend", "prob_happy"]);
      assert.equal(valid, rows.length, "scoring always answers a label");
      for (const v of rows) {
        const probs = v.slice(4).map(Number);
        assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9, `probabilities ${probs}`);
      }
    }
  }

  // --compute_dtype bf16 (bf16 products where the CPU has AMX or AVX512-BF16) moves the label probabilities
  // by about bf16's rounding, no more.
  const bf16 = await lorac(
    "predict",
    ...["--base_path", dir, "--test_file", "test.csv", "--base_model_name", model, "--output_dir", out],
    ...["--save_csv", "predictions_bf16.csv", "--decode", "score", "--compute_dtype", "bf16"],
  );
  assert.equal(bf16.code, 0, `bf16 compute: ${bf16.stderr} (seed ${rng.seed})`);
  const run = (JSON.parse(await Deno.readTextFile(`${out}/metrics.json`)) as MetricsJson).run;
  assert.equal(run?.compute_dtype, "bf16", "metrics.json says what the base multiplied in");
  const probabilities = async (name: string) =>
    parseCsv(await Deno.readTextFile(`${out}/${name}`), name).rows.flatMap((r) => r.values.slice(4).map(Number));
  const [f32Probs, bf16Probs] = [
    await probabilities("predictions_score.csv"),
    await probabilities("predictions_bf16.csv"),
  ];
  bf16Probs.forEach((p, i) => assert.ok(Math.abs(p - f32Probs[i]) < 0.02, `bf16 ${p} vs f32 ${f32Probs[i]}`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: a bad CSV is one line naming the file, a non-zero exit and no output files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lorac-cli-bad-" });
  const good = "subject,body,category\nsun day,the girl,happy\ntree day,a boy,big\n";
  const files: Record<string, string> = {
    "good.csv": good,
    "missing_column.csv": "subject,text,category\nsun day,the girl,happy\n",
    "unknown_label.csv": good + "dog day,a dog,friend\n",
    "empty.csv": "",
    "broken_quote.csv": 'subject,body,category\nsun day,"the girl,happy\ntree day,a boy,big\n',
  };
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const common = ["--base_path", dir, "--text_fields", "subject", "body", "--label_column", "category"];
  const model = ["--base_model_name", `${STORIES}/hf`];
  const cases: [string, string[], RegExp][] = [
    ["train, missing column", ["train", "--train_file", "missing_column.csv"], /no column "body" \(--text_fields\)/],
    ["train, unknown label", ["train", "--val_file", "unknown_label.csv"], /line 4: label "friend" is not one of/],
    ["train, empty file", ["train", "--train_file", "empty.csv"], /the file is empty/],
    ["train, broken quoting", ["train", "--train_file", "broken_quote.csv"], /line 2: a quoted field .* never closed/],
    ["train, bad test file", ["train", "--test_file", "missing_column.csv"], /missing_column\.csv: no column "body"/],
    ["predict, missing column", ["predict", "--test_file", "missing_column.csv"], /no column "body"/],
    ["predict, empty file", ["predict", "--test_file", "empty.csv"], /empty\.csv: the file is empty/],
    ["predict, broken quoting", ["predict", "--test_file", "broken_quote.csv"], /line 2: a quoted field/],
  ];
  await Promise.all(cases.map(async ([name, args, message], i) => {
    const out = `${dir}/out${i}`;
    const defaults = args[0] === "train" ? ["--train_file", "good.csv", "--val_file", "good.csv"] : [];
    // Later flags win, so each case's file replaces the default one.
    const r = await lorac(args[0], ...common, ...model, ...defaults, ...args.slice(1), "--output_dir", out);
    assert.equal(r.code, 1, `${name}: exit ${r.code}`);
    assert.match(r.stderr, /^lorac: [^\n]+\.csv: [^\n]+\n$/, `${name}: one line naming the file: ${r.stderr}`);
    assert.match(r.stderr, message, name);
    assert.equal(r.stdout, "", name);
    assert.ok(!(await exists(out)), `${name}: nothing written`);
  }));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: an invalid hyperparameter is one line naming the flag and what it takes", async () => {
  const cases: [string[], string][] = [
    [["train", "--lora_r", "0"], '--lora_r must be a positive integer, got "0"'],
    [["train", "--learning_rate", "-2e-4"], '--learning_rate must be a positive number, got "-2e-4"'],
    [
      ["train", "--per_device_train_batch_size", "0"],
      '--per_device_train_batch_size must be a positive integer, got "0"',
    ],
    [["train", "--lora_dropout", "1"], '--lora_dropout must be a number in [0, 1), got "1"'],
    [["train", "--num_train_epochs", "1.5"], '--num_train_epochs must be a positive integer, got "1.5"'],
    [["train", "--device", "gpu"], '--device must be one of auto, cpu, cuda, got "gpu"'],
    [["train", "--report_to", "wandb"], '--report_to must be one of tensorboard, none, got "wandb"'],
    [
      ["train", "--target_modules", "q_proj", "qkv"],
      "--target_modules must be some of q_proj, k_proj, v_proj, " +
      'o_proj, gate_proj, up_proj, down_proj, got "qkv"',
    ],
    [
      ["train", "--batch_tokens", "100"],
      "--batch_tokens must be at least --max_seq_length (512) so that every example fits in a batch, got 100",
    ],
    [
      ["train", "--layers_to_transform", "9-2"],
      '--layers_to_transform must be layer indices or ranges like 22-29,31, got "9-2"',
    ],
    [["train", "--cache_frozen_layers", "no"], '--cache_frozen_layers must be one of true, false, got "no"'],
    [["predict", "--decode", "beam"], '--decode must be one of generate, score, got "beam"'],
    [["predict", "--max_new_tokens", "0"], '--max_new_tokens must be a positive integer, got "0"'],
    [["train"], "required option '--output_dir <dir>' not specified"],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const out = args.length > 1 ? ["--output_dir", "/nonexistent/lorac-never-written"] : [];
    const r = await lorac(...args, ...out);
    assert.equal(r.code, 1, args.join(" "));
    assert.equal(r.stderr, `lorac: ${message}\n`, args.join(" "));
  }));
});
