/**
 * `lorac predict` (`deno task predict`): the seed's `scripts/predict.py`.
 * Attaches the adapter in --output_dir to the base model, answers every
 * row of the test CSV, prints the scores as the seed's results.txt and
 * writes results.txt, metrics.json, report.html and the predictions CSV.
 * A run that fails leaves the results folder as it found it.
 *
 * @module
 */

import { Command } from "commander";
import { predict, type PredictResult } from "../lib/predict/predict.ts";
import { resultsText } from "../lib/report/results.ts";
import { formatDuration } from "../lib/ui/progress.ts";
import { addFlags, type FlagName, type FlagValues, predictOptionsFrom } from "./options.ts";
import { checkOutputFolder, undoneOnFailure } from "./output_dir.ts";

const PREDICT_FLAGS: readonly FlagName[] = [
  "base_path",
  "test_file",
  "label_column",
  "text_fields",
  "labels",
  "multi_label",
  "template",
  "few_shot",
  "train_file",
  "seed",
  "base_model_name",
  "tokenizer",
  "output_dir",
  "save_csv",
  "results_dir",
  "decode",
  "max_new_tokens",
  "max_seq_length",
  "batch_tokens",
  "device",
  "num_threads",
  "compute_dtype",
];

/** What is printed after the scores: speed, invalid answers, and where the files are. */
function summary(r: PredictResult): string {
  const n = r.predictions.length;
  const lines = [
    `${n} examples (${r.decode}) in ${formatDuration(r.decodeSeconds)}: ${r.examplesPerSecond.toFixed(2)} examples/s`,
  ];
  if (r.truncated > 0) lines.push(`${r.truncated} texts were cut to fit max_seq_length`);
  lines.push(`wrote ${r.files.join(", ")}`);
  return lines.join("\n");
}

/**
 * The `predict` command.
 *
 * @example
 * ```ts
 * import { predictCommand } from "./predict.ts";
 * predictCommand().name(); // "predict"
 * ```
 */
export function predictCommand(): Command {
  const cmd = new Command("predict").description(
    "Predict the labels of a test CSV with a trained adapter, score them and write the report",
  );
  addFlags(cmd, PREDICT_FLAGS, {
    required: ["output_dir"],
    help: {
      output_dir: "folder `lorac train` wrote: the adapter, and training_args.json whose labels, template, " +
        "columns and max_seq_length are used unless given here; the results go there too",
      labels: "the label set, in order (default: training's, else the sorted labels of the test file)",
      label_column: "column holding the gold label (default: training's, else label_name)",
      text_fields: "columns joined into the text (default: training's, else title abstract)",
      template: "prompt template file (default: training's template, else the seed's)",
      few_shot: "k exemplars per label drawn from --train_file, when the adapter was trained without (default: 0)",
      train_file: "training CSV, read only for --few_shot exemplars (default: train.csv)",
      base_model_name: "base model (default: the one the adapter was trained on)",
      max_seq_length: "longest prompt plus answer in tokens; longer texts are cut (default: training's, else 512)",
      multi_label: "answers hold comma-separated labels (default: as trained)",
      tokenizer: "a tokenizer.json to use instead of the model's own (default: training's)",
      seed: "seed of the --few_shot draw (default: 42)",
      batch_tokens: "most tokens decoded in one batch: prompts and answers, times the labels with --decode score " +
        "(default: 4096)",
    },
  });
  return cmd.action(async (v: FlagValues) => {
    await checkOutputFolder(v.output_dir, "--output_dir");
    if (v.results_dir) await checkOutputFolder(v.results_dir, "--results_dir");
    const options = { ...predictOptionsFrom(v), warn: (m: string) => console.error(`lorac: warning: ${m}`) };
    // The results are written last, several files: a failure among them takes back the ones written.
    const r = await undoneOnFailure(v.results_dir ?? v.output_dir, () => predict(options));
    console.log(resultsText(r.metrics));
    console.log(summary(r));
  });
}
