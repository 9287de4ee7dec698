/**
 * The options of a training run, named after the seed's flags (camelCase:
 * `--base_path` is `basePath`), with their defaults. Where the seed is
 * silent the defaults are those of transformers' TrainingArguments / TRL's
 * SFTConfig, except:
 *
 * - learningRate 2e-4: the QLoRA paper's and PEFT's examples' rate for
 *   LoRA (TRL's 2e-5 is a full fine-tuning rate and barely moves adapters);
 * - batches are a token budget (`batchTokens`, default 4096 = 8 sequences
 *   of the default max_seq_length 512) rather than a count of examples,
 *   because sequences are packed without padding;
 * - the validation set is evaluated (and checkpoints are saved) at the end
 *   of every epoch and after the last step, unless evalSteps / saveSteps
 *   ask for every N steps.
 *
 * AdamW is torch's (betas 0.9/0.999, eps 1e-8) with TrainingArguments'
 * weight decay 0 (torch's own default is 0.01) and max_grad_norm 1.
 *
 * @module
 */

import type { ComputeDType, DeviceChoice } from "../backend/backend.ts";
import { DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS } from "../data/examples.ts";
import { DEFAULT_LORA_OPTIONS } from "../model/lora_params.ts";
import { LINEAR_NAMES, type LinearName } from "../model/weights.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { ProgressSink } from "../ui/progress.ts";
import { SCHEDULER_TYPES, type SchedulerType } from "./schedule.ts";

/** The validation metrics that can pick the best checkpoint. */
export type BestMetric = "eval_accuracy" | "eval_loss";

/** Everything `train` takes; only outputDir is required. */
export interface TrainOptions {
  /** Folder of the CSV files (`--base_path`, default "dataset"). */
  basePath?: string;
  /** Training CSV, relative to basePath unless absolute (`--train_file`, default "train.csv"). */
  trainFile?: string;
  /** Validation CSV (`--val_file`, default "validation.csv"); null: no evaluation. */
  valFile?: string | null;
  /** The gold label column (`--label_column`, default "label_name"). */
  labelColumn?: string;
  /** Columns joined into the text (`--text_fields`, default title, abstract). */
  textFields?: readonly string[];
  /** The label set (`--labels`); default: the sorted labels of the training data. */
  labels?: readonly string[];
  /** Gold cells hold comma-separated labels. */
  multiLabel?: boolean;
  /** A prompt template file instead of the seed's template (see lib/data/prompts.ts). */
  templateFile?: string;
  /** Few-shot exemplars per label in every prompt (default 0). */
  fewShot?: number;
  /** Base model: HF folder, .safetensors, Hub id or GGUF (`--base_model_name`; default SmolLM2-135M-Instruct). */
  baseModelName?: string;
  /** A tokenizer.json path or a built tokenizer, instead of the model's own. */
  tokenizer?: string | Tokenizer;
  /** How the frozen base is stored (default "nf4": QLoRA). */
  baseDtype?: "nf4" | "bf16" | "f32";
  /** Where the adapter, checkpoints and logs go (`--output_dir`). */
  outputDir: string;
  /** LoRA rank (`--lora_r`, the seed's 2). */
  loraR?: number;
  /** LoRA alpha (`--lora_alpha`, the seed's 2). */
  loraAlpha?: number;
  /** LoRA dropout (`--lora_dropout`, the seed's 0). */
  loraDropout?: number;
  /** Projections to adapt (default all seven). */
  loraTargets?: readonly LinearName[];
  /**
   * The decoder layers to adapt (`--layers_to_transform`, PEFT's field; default null: all). Adapting only
   * the top layers trains faster: the backward stops at the lowest one, and with cacheFrozenLayers the
   * layers below it run once per example for the whole run.
   */
  layersToTransform?: readonly number[] | null;
  /**
   * With layersToTransform above layer 0: compute the frozen layers' output once per training and
   * validation example and start every later forward from it (`--cache_frozen_layers`, default true).
   * Same results; costs 4 · hidden_size bytes of memory per token (see frozen_prefix.ts).
   */
  cacheFrozenLayers?: boolean;
  /** rsLoRA scaling alpha / sqrt(r). */
  useRslora?: boolean;
  /** Peak learning rate (default 2e-4). */
  learningRate?: number;
  /** Epochs (default 3). */
  numEpochs?: number;
  /** Most tokens per micro-batch (default 4096). */
  batchTokens?: number;
  /** Micro-batches per optimizer step (default 1). */
  gradientAccumulationSteps?: number;
  /** Longest example in tokens; longer texts are cut, never the answer (default 512). */
  maxSeqLength?: number;
  /** Seed of the adapters' initialisation, the data order and dropout (default 42). */
  seed?: number;
  /** AdamW weight decay (default 0). */
  weightDecay?: number;
  /** AdamW beta1 (default 0.9). */
  adamBeta1?: number;
  /** AdamW beta2 (default 0.999). */
  adamBeta2?: number;
  /** AdamW epsilon (default 1e-8). */
  adamEpsilon?: number;
  /** Global gradient norm clip, 0 for none (default 1). */
  maxGradNorm?: number;
  /** Schedule shape (default "linear"). */
  lrSchedulerType?: SchedulerType;
  /** Warmup steps (default 0). */
  warmupSteps?: number;
  /** Warmup as a share of the steps, used when warmupSteps is 0 (default 0). */
  warmupRatio?: number;
  /** Evaluate every N steps; 0 (default): every epoch. Always after the last step. */
  evalSteps?: number;
  /** Save a checkpoint every N steps; 0 (default): every epoch. Always after the last step. */
  saveSteps?: number;
  /**
   * How evaluation decodes answers for the accuracy: "generate" (default, the seed's greedy generation
   * and exact match) or "score" (the likeliest label; single-label only). See evaluate.ts.
   */
  evalDecode?: "generate" | "score";
  /** The metric that picks the best checkpoint (default "eval_accuracy"). */
  metricForBestModel?: BestMetric;
  /** "tensorboard" (the seed's default) also writes event files under output_dir/runs; "none" does not. */
  reportTo?: "tensorboard" | "none";
  /** Resume from this checkpoint folder, or true for the latest one in outputDir. */
  resumeFromCheckpoint?: string | boolean;
  /** `--device` (default "auto"). */
  device?: DeviceChoice;
  /** CPU threads (default: all cores). */
  numThreads?: number;
  /** What the NF4 base GEMMs multiply in (`--compute_dtype`; default: the device's, see BackendOptions). */
  computeDtype?: ComputeDType;
  /** Recompute activations in the backward (less memory). */
  recompute?: boolean;
  /**
   * Skip a step whose loss or gradient norm is not finite (no update, counted in trainer_state.json and
   * metrics.jsonl) instead of stopping the run with an error (`--skip_nonfinite_steps`; default false).
   */
  skipNonfiniteSteps?: boolean;
  /** The device's peak FLOP/s, for MFU in the logs (default: MFU not reported). */
  peakFlops?: number;
  /** Console output: true (default) on stderr, false none, or a sink. */
  progress?: boolean | ProgressSink;
}

/** Options with every default filled in. */
export type ResolvedTrainOptions =
  & Required<
    Omit<
      TrainOptions,
      "labels" | "templateFile" | "tokenizer" | "peakFlops" | "numThreads" | "computeDtype" | "baseModelName"
    >
  >
  & Pick<
    TrainOptions,
    "labels" | "templateFile" | "tokenizer" | "peakFlops" | "numThreads" | "computeDtype" | "baseModelName"
  >;

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(message);
}

/**
 * Fills in the defaults and checks every value, with a message naming the
 * option and what it accepts.
 *
 * @example
 * ```ts
 * import { resolveTrainOptions } from "./options.ts";
 * resolveTrainOptions({ outputDir: "out" }).learningRate; // 0.0002
 * ```
 */
export function resolveTrainOptions(options: TrainOptions): ResolvedTrainOptions {
  const o: ResolvedTrainOptions = {
    basePath: "dataset",
    trainFile: "train.csv",
    valFile: "validation.csv",
    labelColumn: DEFAULT_LABEL_COLUMN,
    textFields: DEFAULT_TEXT_FIELDS,
    multiLabel: false,
    fewShot: 0,
    baseDtype: "nf4",
    loraR: DEFAULT_LORA_OPTIONS.r,
    loraAlpha: DEFAULT_LORA_OPTIONS.alpha,
    loraDropout: DEFAULT_LORA_OPTIONS.dropout,
    loraTargets: DEFAULT_LORA_OPTIONS.targets,
    layersToTransform: DEFAULT_LORA_OPTIONS.layers,
    cacheFrozenLayers: true,
    useRslora: false,
    learningRate: 2e-4,
    numEpochs: 3,
    batchTokens: 4096,
    gradientAccumulationSteps: 1,
    maxSeqLength: 512,
    seed: 42,
    weightDecay: 0,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    maxGradNorm: 1,
    lrSchedulerType: "linear",
    warmupSteps: 0,
    warmupRatio: 0,
    evalSteps: 0,
    saveSteps: 0,
    evalDecode: "generate",
    metricForBestModel: "eval_accuracy",
    reportTo: "tensorboard",
    resumeFromCheckpoint: false,
    device: "auto",
    recompute: false,
    skipNonfiniteSteps: false,
    progress: true,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    outputDir: options.outputDir,
  };
  const positiveInt = (v: number) => Number.isInteger(v) && v > 0;
  const wholeNumber = (v: number) => Number.isInteger(v) && v >= 0;
  check(typeof o.outputDir === "string" && o.outputDir !== "", "outputDir (--output_dir) is required");
  check(positiveInt(o.loraR), `lora_r must be a positive integer, got ${o.loraR}`);
  check(o.loraAlpha > 0, `lora_alpha must be positive, got ${o.loraAlpha}`);
  check(o.loraDropout >= 0 && o.loraDropout < 1, `lora_dropout must be in [0, 1), got ${o.loraDropout}`);
  check(
    o.loraTargets.length > 0 && o.loraTargets.every((t) => LINEAR_NAMES.includes(t)),
    `lora targets must be some of ${LINEAR_NAMES.join(", ")}, got ${o.loraTargets.join(", ")}`,
  );
  check(
    o.layersToTransform === null ||
      (o.layersToTransform.length > 0 && o.layersToTransform.every((l) => Number.isInteger(l) && l >= 0)),
    `layers_to_transform must be layer indices (0, 1, ...), got ${o.layersToTransform}`,
  );
  check(
    typeof o.cacheFrozenLayers === "boolean",
    `cache_frozen_layers must be true or false, got ${o.cacheFrozenLayers}`,
  );
  check(o.learningRate > 0, `learning_rate must be positive, got ${o.learningRate}`);
  check(positiveInt(o.numEpochs), `num_train_epochs must be a positive integer, got ${o.numEpochs}`);
  check(positiveInt(o.maxSeqLength), `max_seq_length must be a positive integer, got ${o.maxSeqLength}`);
  check(
    positiveInt(o.batchTokens) && o.batchTokens >= o.maxSeqLength,
    `batch_tokens must be an integer >= max_seq_length (${o.maxSeqLength}) so any example fits, got ${o.batchTokens}`,
  );
  check(positiveInt(o.gradientAccumulationSteps), "gradient_accumulation_steps must be a positive integer");
  check(wholeNumber(o.seed) && o.seed < 2 ** 32, `seed must be an integer in [0, 2^32), got ${o.seed}`);
  check(o.weightDecay >= 0, `weight_decay must be >= 0, got ${o.weightDecay}`);
  check(o.adamBeta1 >= 0 && o.adamBeta1 < 1 && o.adamBeta2 >= 0 && o.adamBeta2 < 1, "adam betas must be in [0, 1)");
  check(o.adamEpsilon > 0, `adam_epsilon must be positive, got ${o.adamEpsilon}`);
  check(o.maxGradNorm >= 0, `max_grad_norm must be >= 0 (0: no clipping), got ${o.maxGradNorm}`);
  check(
    SCHEDULER_TYPES.includes(o.lrSchedulerType),
    `lr_scheduler_type must be one of ${SCHEDULER_TYPES.join(", ")}, got ${o.lrSchedulerType}`,
  );
  check(wholeNumber(o.evalSteps) && wholeNumber(o.saveSteps), "eval_steps and save_steps must be whole numbers");
  check(wholeNumber(o.fewShot), `few-shot exemplars per label must be a whole number, got ${o.fewShot}`);
  check(
    o.metricForBestModel === "eval_accuracy" || o.metricForBestModel === "eval_loss",
    `metric_for_best_model must be eval_accuracy or eval_loss, got ${o.metricForBestModel}`,
  );
  check(
    o.evalDecode === "generate" || o.evalDecode === "score",
    `eval decoding must be generate or score, got ${o.evalDecode}`,
  );
  check(
    !(o.evalDecode === "score" && o.multiLabel),
    "label scoring (eval decode score) is single-label only; use generate",
  );
  check(
    o.reportTo === "tensorboard" || o.reportTo === "none",
    `report_to must be tensorboard or none, got ${o.reportTo}`,
  );
  check(
    typeof o.skipNonfiniteSteps === "boolean",
    `skip_nonfinite_steps must be true or false, got ${o.skipNonfiniteSteps}`,
  );
  check(o.peakFlops === undefined || o.peakFlops > 0, `peak FLOP/s must be positive, got ${o.peakFlops}`);
  return o;
}

/**
 * `file` under `basePath`, as Python's os.path.join: an absolute file stands alone.
 *
 * @example
 * ```ts
 * import { dataPath } from "./options.ts";
 * dataPath("dataset", "train.csv"); // "dataset/train.csv"
 * dataPath("dataset", "/data/train.csv"); // "/data/train.csv"
 * ```
 */
export function dataPath(basePath: string, file: string): string {
  return file.startsWith("/") ? file : `${basePath.replace(/\/+$/, "")}/${file}`;
}
