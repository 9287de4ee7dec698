/**
 * `lorac train` (`deno task train`): the seed's `scripts/train.py`. Reads
 * the CSVs, fine-tunes LoRA adapters on the frozen 4-bit base and writes
 * them, in PEFT's format, to --output_dir with checkpoints and logs.
 *
 * The output folder and the data files are checked before the model is
 * loaded, so a bad CSV fails in a moment, with one line, and leaves no output
 * behind; a run that fails later (a bad model file, a full disk) removes what
 * it wrote, unless it saved a checkpoint to resume from (see output_dir.ts).
 *
 * @module
 */

import { Command } from "commander";
import { checkGold, DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS, labelSet, readExamples } from "../lib/data/examples.ts";
import { PromptTemplate } from "../lib/data/prompts.ts";
import { dataPath } from "../lib/train/options.ts";
import { train, type TrainOptions, type TrainResult } from "../lib/train/trainer.ts";
import { formatDuration } from "../lib/ui/progress.ts";
import { addFlags, type FlagName, type FlagValues, trainOptionsFrom } from "./options.ts";
import { checkOutputFolder, undoneOnFailure } from "./output_dir.ts";

const TRAIN_FLAGS: readonly FlagName[] = [
  "base_path",
  "train_file",
  "val_file",
  "test_file",
  "label_column",
  "text_fields",
  "labels",
  "multi_label",
  "template",
  "few_shot",
  "base_model_name",
  "tokenizer",
  "output_dir",
  "lora_r",
  "lora_alpha",
  "lora_dropout",
  "target_modules",
  "layers_to_transform",
  "cache_frozen_layers",
  "use_rslora",
  "learning_rate",
  "num_train_epochs",
  "per_device_train_batch_size",
  "batch_tokens",
  "gradient_accumulation_steps",
  "lr_scheduler_type",
  "warmup_ratio",
  "warmup_steps",
  "max_grad_norm",
  "weight_decay",
  "max_seq_length",
  "seed",
  "device",
  "num_threads",
  "compute_dtype",
  "report_to",
  "eval_steps",
  "save_steps",
  "decode",
  "resume_from_checkpoint",
  "skip_nonfinite_steps",
];

/**
 * Reads every data file a run will use and checks it (columns, labels, the
 * template) without loading the model; `testFile`, when given, is checked
 * for its columns too. Throws the first problem as one line.
 *
 * @example
 * ```ts
 * import { checkTrainingData } from "./train.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.csv`, "text,label\nhi,ham\nwin,spam\n");
 * await checkTrainingData({ basePath: dir, valFile: null, textFields: ["text"], labelColumn: "label", outputDir: "x" });
 * ```
 */
export async function checkTrainingData(o: TrainOptions, testFile?: string): Promise<void> {
  const basePath = o.basePath ?? "dataset";
  const columns = {
    textFields: o.textFields ?? DEFAULT_TEXT_FIELDS,
    labelColumn: o.labelColumn ?? DEFAULT_LABEL_COLUMN,
  };
  const trainPath = dataPath(basePath, o.trainFile ?? "train.csv");
  const rows = await readExamples(trainPath, columns);
  const labels = labelSet(rows, { labels: o.labels, multiLabel: o.multiLabel });
  checkGold(rows, labels, trainPath, { multiLabel: o.multiLabel });
  if (o.valFile !== null) {
    const valPath = dataPath(basePath, o.valFile ?? "validation.csv");
    checkGold(await readExamples(valPath, columns), labels, valPath, { multiLabel: o.multiLabel });
  }
  // Test labels outside the set are allowed: prediction counts them as wrong.
  if (testFile !== undefined) await readExamples(dataPath(basePath, testFile), columns);
  if (o.templateFile) await PromptTemplate.fromFile(o.templateFile, labels);
}

/** The lines printed when a run ends: what was trained, where it is, and the command that scores it. */
function summary(r: TrainResult, v: FlagValues): string {
  const lines = [
    `trained ${r.steps} steps in ${formatDuration(r.seconds)}; last training loss ${r.trainLoss.toFixed(4)}`,
  ];
  if (r.eval) lines.push(`validation: loss ${r.eval.loss.toFixed(4)}, accuracy ${r.eval.accuracy.toFixed(4)}`);
  if (r.best) lines.push(`best ${r.best.metric} ${r.best.value.toFixed(4)} at step ${r.best.step} (in best/)`);
  lines.push(`adapter (PEFT): ${r.outputDir}/adapter_config.json, ${r.outputDir}/adapter_model.safetensors`);
  const base = v.base_path ? ` --base_path ${v.base_path}` : "";
  const test = v.test_file ? ` --test_file ${v.test_file}` : "";
  lines.push(`score it: deno task predict${base}${test} --output_dir ${r.outputDir}`);
  return lines.join("\n");
}

/**
 * The `train` command.
 *
 * @example
 * ```ts
 * import { trainCommand } from "./train.ts";
 * trainCommand().name(); // "train"
 * ```
 */
export function trainCommand(): Command {
  const cmd = new Command("train").description(
    "Fine-tune LoRA adapters on a frozen 4-bit NF4 base so that it answers a classification prompt with the label",
  );
  addFlags(cmd, TRAIN_FLAGS, {
    required: ["output_dir"],
    help: {
      test_file: "test CSV: checked (columns) before training so a broken file fails now; `lorac predict` scores it",
      decode: "how validation accuracy is measured: generate (the seed's greedy answer and exact match) | " +
        "score (the likeliest label) (default: generate)",
    },
  });
  return cmd.action(async (v: FlagValues) => {
    const options = trainOptionsFrom(v);
    await checkOutputFolder(options.outputDir, "--output_dir");
    await checkTrainingData(options, v.test_file);
    const result = await undoneOnFailure(
      options.outputDir,
      () => train(options),
      (checkpoint) => `${checkpoint} is kept: continue with --resume_from_checkpoint ${checkpoint}`,
    );
    console.log(summary(result, v));
  });
}
