/**
 * `predict(options)`: the seed's `scripts/predict.py`. Attach the trained
 * LoRA adapter (the PEFT folder `train` wrote to its output_dir) to the
 * base model, build each test row's inference prompt exactly as training
 * did, decode the answers in batches (decode.ts: the seed's greedy
 * generation, or label scoring), score them (accuracy, F1, per-class
 * report, confusion matrix) and write predictions.csv, results.txt,
 * metrics.json and report.html.
 *
 * Settings come from, in order: the options; training_args.json beside the
 * adapter (the label set, template, exemplars, columns, max_seq_length, base
 * model and tokenizer training used: trained_settings.ts); the seed's
 * defaults. The test CSV is read and checked before the model is loaded, so
 * a bad file fails at once and writes nothing.
 *
 * The adapter is checked against the base model before any weight is read:
 * modules whose shapes do not fit are an error naming the adapter, the model
 * and the base the adapter was trained on. An adapter_config.json that names
 * another base whose shapes do fit only warns, in one line, and the run goes
 * on: the same model often sits in another folder or under a Hub id.
 *
 * @module
 */

import { type Backend, type ComputeDType, type DeviceChoice, openBackend } from "../backend/backend.ts";
import { DEFAULT_LABEL_COLUMN, DEFAULT_TEXT_FIELDS, type Example, labelSet, readExamples } from "../data/examples.ts";
import { pickExemplars } from "../data/few_shot.ts";
import { checkLabelSet, formatLabels, parseLabelList, splitLabels } from "../data/labels.ts";
import { type Exemplar, PromptTemplate } from "../data/prompts.ts";
import { fitText } from "../data/truncate.ts";
import type { LlamaConfig } from "../formats/llama_config.ts";
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  AdapterError,
  type PeftAdapter,
  readPeftAdapter,
} from "../formats/peft_adapter.ts";
import { classificationMetrics } from "../metrics/classification.ts";
import { multiLabelMetrics } from "../metrics/multilabel.ts";
import { defaultModelSource } from "../model/default_model.ts";
import { LlamaModel } from "../model/llama.ts";
import { loadModel } from "../model/load.ts";
import { LoraParams } from "../model/lora_params.ts";
import { llamaTensorSlots } from "../model/weights.ts";
import type { Metrics } from "../report/metrics_json.ts";
import type { OutputPaths } from "../report/outputs.ts";
import { writeRunOutputs } from "../report/outputs.ts";
import type { PredictionRow } from "../report/predictions.ts";
import { readTrainingLog, type TrainingRecord } from "../report/training_log.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { dataPath } from "../train/options.ts";
import { packSorted } from "../train/packing.ts";
import type { ProgressSink } from "../ui/progress.ts";
import { DECODE_MODES, decodeBatch, type DecodeMode, type Decoding, labelCompletions } from "./decode.ts";
import { ExampleProgress } from "./progress.ts";
import { readTrainedSettings, type TrainedSettings } from "./trained_settings.ts";

/** Everything `predict` takes; only outputDir is required. */
export interface PredictOptions {
  /** Folder of the CSV files (`--base_path`, default "dataset"). */
  basePath?: string;
  /** The CSV to predict, relative to basePath unless absolute (`--test_file`, default "test.csv"). */
  testFile?: string;
  /** The training CSV, read only to draw few-shot exemplars when the adapter records none (default "train.csv"). */
  trainFile?: string;
  /** The gold label column (`--label_column`; default: training's, else "label_name"). */
  labelColumn?: string;
  /** Columns joined into the text (`--text_fields`; default: training's, else title, abstract). */
  textFields?: readonly string[];
  /** The label set (`--labels`; default: training's, else the sorted labels of the test file). */
  labels?: readonly string[];
  /** Gold cells and answers hold comma-separated labels (default: training's, else false). */
  multiLabel?: boolean;
  /** A prompt template file (default: training's template, else the seed's). */
  templateFile?: string;
  /** Few-shot exemplars per label, drawn from trainFile, when the adapter records none (default 0). */
  fewShot?: number;
  /** Seed of the few-shot draw (default 42). */
  seed?: number;
  /** Base model: HF folder, .safetensors, Hub id or GGUF (default: the adapter's, else SmolLM2-135M-Instruct). */
  baseModelName?: string;
  /** A tokenizer.json path or a built tokenizer, instead of the model's own (default: training's). */
  tokenizer?: string | Tokenizer;
  /** How the frozen base is stored (default: training's, else "nf4"). */
  baseDtype?: "nf4" | "bf16" | "f32";
  /** The adapter folder `train` wrote (`--output_dir`); results are written there too unless resultsDir says. */
  outputDir: string;
  /** Load the adapter from outputDir (default true); false predicts with the base model alone. */
  adapter?: boolean;
  /** Where results.txt, metrics.json, report.html and predictions.csv go (default outputDir). */
  resultsDir?: string;
  /** predictions.csv's name, relative to resultsDir unless absolute (`--save_csv`); null: none (default "predictions.csv"). */
  saveCsv?: string | null;
  /** "generate" (default, the seed's) or "score" (see decode.ts). */
  decode?: DecodeMode;
  /** Most tokens generated per answer (default: the longest label's tokens and EOS, plus one). */
  maxNewTokens?: number;
  /** Longest prompt plus answer, in tokens; longer texts are cut (default: training's, else 512). */
  maxSeqLength?: number;
  /** Most tokens (prompts plus answers, times the labels when scoring) decoded in one batch (default 4096). */
  batchTokens?: number;
  /** `--device` (default "auto"). */
  device?: DeviceChoice;
  /** CPU threads (default: all cores). */
  numThreads?: number;
  /** What the NF4 base GEMMs multiply in (`--compute_dtype`; default: the device's, see BackendOptions). */
  computeDtype?: ComputeDType;
  /** Console output (model loading, the progress bar): true (default) on stderr, false none, or a sink. */
  progress?: boolean | ProgressSink;
  /** Where a warning goes, one line each (default: stderr as `warning: ...`, none with `progress: false`). */
  warn?: (message: string) => void;
}

/** What a prediction run reports. */
export interface PredictResult {
  /** The scores. */
  readonly metrics: Metrics;
  /** One row per test example, in file order. */
  readonly predictions: readonly PredictionRow[];
  /** The files written. */
  readonly files: readonly string[];
  /** The label set. */
  readonly labels: readonly string[];
  /** The decode mode used. */
  readonly decode: DecodeMode;
  /** Examples whose text was shortened to fit maxSeqLength. */
  readonly truncated: number;
  /** Each example's prompt token ids, in file order: what was decoded (side-by-side runs give them to other tools). */
  readonly promptIds: readonly (readonly number[])[];
  /** Most tokens generated per answer (generate mode; undefined when scoring). */
  readonly maxNewTokens?: number;
  /** Seconds spent decoding (model loading excluded). */
  readonly decodeSeconds: number;
  /** Examples decoded per second. */
  readonly examplesPerSecond: number;
  /** Wall-clock seconds of the whole call. */
  readonly seconds: number;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(message);
}

const positiveInt = (v: number | undefined) => v === undefined || (Number.isInteger(v) && v > 0);

/** The options, checked, with training's settings and the defaults filled in. */
interface Resolved {
  basePath: string;
  testPath: string;
  trainPath: string;
  labelColumn: string;
  textFields: readonly string[];
  multiLabel: boolean;
  decode: DecodeMode;
  maxSeqLength: number;
  batchTokens: number;
  seed: number;
  fewShot: number;
}

function resolve(options: PredictOptions, trained: TrainedSettings | null): Resolved {
  check(typeof options.outputDir === "string" && options.outputDir !== "", "outputDir (--output_dir) is required");
  const decode = options.decode ?? "generate";
  check(DECODE_MODES.includes(decode), `decode must be one of ${DECODE_MODES.join(", ")}, got ${decode}`);
  check(positiveInt(options.maxNewTokens), `max_new_tokens must be a positive integer, got ${options.maxNewTokens}`);
  check(positiveInt(options.maxSeqLength), `max_seq_length must be a positive integer, got ${options.maxSeqLength}`);
  check(positiveInt(options.batchTokens), `batch_tokens must be a positive integer, got ${options.batchTokens}`);
  check(
    options.fewShot === undefined || (Number.isInteger(options.fewShot) && options.fewShot >= 0),
    `few_shot must be a whole number, got ${options.fewShot}`,
  );
  const multiLabel = options.multiLabel ?? trained?.multiLabel ?? false;
  check(
    !(decode === "score" && multiLabel),
    "--decode score ranks single labels; use --decode generate for multi-label",
  );
  const basePath = options.basePath ?? "dataset";
  return {
    basePath,
    testPath: dataPath(basePath, options.testFile ?? "test.csv"),
    trainPath: dataPath(basePath, options.trainFile ?? "train.csv"),
    labelColumn: options.labelColumn ?? trained?.labelColumn ?? DEFAULT_LABEL_COLUMN,
    textFields: options.textFields ?? trained?.textFields ?? DEFAULT_TEXT_FIELDS,
    multiLabel,
    decode,
    maxSeqLength: options.maxSeqLength ?? trained?.maxSeqLength ?? 512,
    batchTokens: options.batchTokens ?? 4096,
    seed: options.seed ?? 42,
    fewShot: options.fewShot ?? 0,
  };
}

/** The label set: given, else training's, else the test file's labels (sorted, as training derives them). */
function chooseLabels(
  options: PredictOptions,
  trained: TrainedSettings | null,
  test: readonly Example[],
  multi: boolean,
) {
  const labels = options.labels
    ? parseLabelList(options.labels)
    : trained?.labels
    ? [...trained.labels]
    : labelSet(test, { multiLabel: multi });
  checkLabelSet(labels, { multiLabel: multi });
  return labels;
}

/** The prompt template: a given file, else training's template and exemplars, else the seed's. */
async function chooseTemplate(
  options: PredictOptions,
  trained: TrainedSettings | null,
  r: Resolved,
  labels: readonly string[],
): Promise<PromptTemplate> {
  let exemplars: readonly Exemplar[] = trained?.exemplars ?? [];
  if (exemplars.length === 0 && r.fewShot > 0) {
    const train = await readExamples(r.trainPath, { textFields: r.textFields, labelColumn: r.labelColumn });
    exemplars = pickExemplars(train, labels, { perLabel: r.fewShot, seed: r.seed, multiLabel: r.multiLabel });
  }
  if (options.templateFile) return await PromptTemplate.fromFile(options.templateFile, labels, exemplars);
  if (trained?.template) return new PromptTemplate(trained.template, labels, exemplars, trained.file);
  return PromptTemplate.seed(labels, exemplars);
}

/** Where each output goes. */
function outputPathsOf(options: PredictOptions): OutputPaths {
  const dir = (options.resultsDir ?? options.outputDir).replace(/\/+$/, "");
  const paths: OutputPaths = {
    results: `${dir}/results.txt`,
    metricsJson: `${dir}/metrics.json`,
    reportHtml: `${dir}/report.html`,
  };
  const csv = options.saveCsv === undefined ? "predictions.csv" : options.saveCsv;
  if (csv !== null) paths.predictionsCsv = csv.startsWith("/") ? csv : `${dir}/${csv}`;
  return paths;
}

/** The adapter `train` wrote to `dir`, or an error that says how to get one. */
async function readAdapter(dir: string): Promise<PeftAdapter> {
  try {
    return await readPeftAdapter(dir);
  } catch (e) {
    const noConfig = e instanceof AdapterError && e.path.endsWith(ADAPTER_CONFIG) &&
      e.cause instanceof Deno.errors.NotFound;
    const why = noConfig ? `it has no ${ADAPTER_CONFIG}` : (e as Error).message;
    throw new Error(`no trained adapter in ${dir} (${why}); run \`lorac train --output_dir ${dir}\` first`, {
      cause: e,
    });
  }
}

/**
 * Whether two model names (folders, .gguf files or Hub ids) likely name the
 * same model: the same last path segment, a Hub cache snapshot folder
 * counting as its repository's name. A model moved to another folder, or a
 * Hub id and a folder named after it, are the same; another model or another
 * quantization is not.
 */
function sameModel(a: string, b: string): boolean {
  const name = (s: string) => {
    const path = s.replace(/\/+$/, "");
    return /models--[^/]+--([^/]+)\/snapshots\/[^/]+$/.exec(path)?.[1] ?? path.split("/").pop();
  };
  return name(a) === name(b);
}

/** What to do about an adapter that does not fit `source`: the base it names, or retraining. */
function baseHint(adapter: PeftAdapter, source: string): string {
  const trainedOn = adapter.config.baseModelNameOrPath;
  return trainedOn !== null && !sameModel(trainedOn, source)
    ? `it was trained on ${trainedOn}: pass --base_model_name ${trainedOn}`
    : "pass the base model it was trained on with --base_model_name, or train it again on this one";
}

/**
 * Checks, before any weight is loaded, that every adapted module is a
 * projection of `config`'s model with the adapter's shapes; one line naming
 * the adapter file, the model and the first module that does not fit.
 */
function checkAdapterFits(adapter: PeftAdapter, config: LlamaConfig, file: string, source: string): void {
  const shapes = new Map(llamaTensorSlots(config).map((s) => [s.name.replace(/\.weight$/, ""), s.shape]));
  for (const m of adapter.modules) {
    const shape = shapes.get(m.module);
    const problem = shape === undefined
      ? `it adapts ${m.module}, which a Llama of ${config.numLayers} layers does not have`
      : shape[1] !== m.inFeatures || shape[0] !== m.outFeatures
      ? `${m.module} is ${m.inFeatures} -> ${m.outFeatures} in the adapter, ${shape[1]} -> ${shape[0]} in the model`
      : null;
    if (problem !== null) throw new Error(`${file} does not fit ${source} (${problem}); ${baseHint(adapter, source)}`);
  }
}

/** Puts the adapter on the base model; when it does not fit, one line naming the adapter, the base and the way out. */
function attachAdapter(
  backend: Backend,
  adapter: PeftAdapter,
  file: string,
  config: LlamaConfig,
  source: string,
): LoraParams {
  try {
    return LoraParams.fromPeft(backend, config, adapter);
  } catch (e) {
    throw new Error(`${file} does not fit ${source} (${(e as Error).message}); ${baseHint(adapter, source)}`, {
      cause: e,
    });
  }
}

/**
 * Predicts the labels of a test CSV with a trained adapter, scores them and
 * writes the outputs (see the module notes and {@link PredictOptions}).
 *
 * @example
 * ```ts ignore
 * import { predict } from "./predict.ts";
 * const r = await predict({
 *   basePath: "../shared/data/arxiv5",
 *   outputDir: "runs/arxiv5", // what `train` wrote
 *   decode: "score",
 * });
 * r.metrics.accuracy; // 0.93
 * r.files; // ["runs/arxiv5/results.txt", ".../metrics.json", ".../report.html", ".../predictions.csv"]
 * ```
 */
export async function predict(options: PredictOptions): Promise<PredictResult> {
  const started = performance.now();
  const useAdapter = options.adapter ?? true;
  const trained = useAdapter ? await readTrainedSettings(options.outputDir) : null;
  const r = resolve(options, trained);

  // The data first: a bad file fails before the model loads, and nothing is written.
  const test = await readExamples(r.testPath, { textFields: r.textFields, labelColumn: r.labelColumn });
  const labels = chooseLabels(options, trained, test, r.multiLabel);
  const template = await chooseTemplate(options, trained, r, labels);

  const adapter = useAdapter ? await readAdapter(options.outputDir) : null;

  using backend = await openBackend(options.device ?? "auto", {
    numThreads: options.numThreads,
    computeDtype: options.computeDtype,
  });
  const source = options.baseModelName ?? trained?.baseModelName ?? adapter?.config.baseModelNameOrPath ??
    await defaultModelSource();
  const adapterDir = options.outputDir.replace(/\/+$/, "");
  const adapterFile = `${adapterDir}/${ADAPTER_WEIGHTS}`;
  const warn = options.warn ?? (options.progress === false ? () => {} : (m: string) => console.error(`warning: ${m}`));
  const given = options.tokenizer ?? trained?.tokenizer;
  const ownTokenizer = typeof given === "object" ? given : null;
  using loaded = await loadModel(source, backend, {
    tokenizer: ownTokenizer ? false : given as string | undefined,
    baseDtype: options.baseDtype ?? trained?.baseDtype ?? "nf4",
    progress: options.progress ?? true,
    // Before any weight is read: an adapter that does not fit fails at once, and one that names another base warns.
    checkConfig: (config) => {
      if (adapter === null) return;
      checkAdapterFits(adapter, config, adapterFile, source);
      const trainedOn = adapter.config.baseModelNameOrPath;
      if (trainedOn !== null && !sameModel(trainedOn, source)) {
        warn(
          `${adapterDir}/${ADAPTER_CONFIG} says the adapter was trained on ${trainedOn}, this run uses ${source}: ` +
            `unless they are the same model, pass --base_model_name ${trainedOn}`,
        );
      }
    },
  });
  const tokenizer = (ownTokenizer ?? loaded.tokenizer) as Tokenizer;
  const eosId = tokenizer.eosId ?? loaded.config.eosTokenIds[0];
  if (eosId === undefined) throw new Error(`${source}: neither the tokenizer nor config.json names an EOS token`);
  using lora = adapter ? attachAdapter(backend, adapter, adapterFile, loaded.config, source) : null;
  using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora });

  // Prompts, with texts cut so that prompt and answer fit max_seq_length as in training. The longest answer is a
  // label, or in multi-label mode all of them.
  const answers = r.multiLabel ? [formatLabels(labels, labels)] : labels;
  const completions = labelCompletions(answers, template, tokenizer, eosId);
  const longest = Math.max(...completions.map((c) => c.length));
  let truncated = 0;
  const prompts = test.map((e) => {
    const fitted = fitText(e.text, {
      render: (t) => template.prompt(t),
      tokenizer,
      maxTokens: r.maxSeqLength,
      reserve: longest,
    });
    if (fitted.truncated) truncated++;
    const ids = tokenizer.encode(template.prompt(fitted.text));
    if (ids.at(-1) === eosId) ids.pop(); // a tokenizer that appends EOS itself (add_eos_token)
    return ids;
  });

  const decoding: Decoding = r.decode === "score" ? { mode: "score", labels, completions } : {
    mode: "generate",
    labels,
    multiLabel: r.multiLabel,
    maxNewTokens: options.maxNewTokens ?? longest + 1,
    stopTokens: [...new Set([eosId, ...loaded.config.eosTokenIds])],
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
  };
  // Tokens a batch holds: each prompt and its answer, once per label when scoring.
  const copies = decoding.mode === "score" ? labels.length : 1;
  const newTokens = decoding.mode === "score" ? longest - 1 : decoding.maxNewTokens;
  const batches = packSorted(prompts.map((p) => (p.length + newTokens) * copies), r.batchTokens);

  const sink = options.progress === false ? null : options.progress === true ? undefined : options.progress;
  const bar = sink === null ? null : new ExampleProgress("predict", test.length, { sink });
  const decodeStart = performance.now();
  const rows: PredictionRow[] = new Array(test.length);
  for (const batch of batches) {
    const decoded = decodeBatch(model, batch.map((i) => prompts[i]), decoding);
    batch.forEach((i, k) => {
      const d = decoded[k];
      rows[i] = {
        text: test[i].text,
        gold: test[i].gold,
        pred: d.pred,
        answer: d.answer,
        probabilities: d.probabilities,
      };
    });
    bar?.add(batch.length);
  }
  bar?.finish();
  const decodeSeconds = (performance.now() - decodeStart) / 1000;

  const gold = rows.map((row) => row.gold ?? "");
  const metrics: Metrics = r.multiLabel
    ? multiLabelMetrics(
      gold.map(splitLabels),
      rows.map((row) => (row.pred === null ? null : splitLabels(row.pred))),
      labels,
    )
    : classificationMetrics(gold, rows.map((row) => row.pred), labels);
  const training = useAdapter ? await trainingLogOf(options.outputDir) : undefined;
  const run: Record<string, string | number | boolean> = {
    model: source,
    adapter: useAdapter ? options.outputDir : "none (base model alone)",
    test_file: r.testPath,
    decode: r.decode,
    device: backend.deviceName,
    compute_dtype: backend.computeDtype,
    examples: test.length,
    truncated_texts: truncated,
    decode_seconds: Number(decodeSeconds.toFixed(2)),
    examples_per_second: Number((test.length / decodeSeconds).toFixed(2)),
  };
  if (decoding.mode === "generate") run.max_new_tokens = decoding.maxNewTokens;
  const paths = outputPathsOf(options);
  await Deno.mkdir(options.resultsDir ?? options.outputDir, { recursive: true });
  const files = await writeRunOutputs(paths, { metrics, predictions: rows, training, run });
  return {
    metrics,
    predictions: rows,
    files,
    labels,
    decode: r.decode,
    truncated,
    promptIds: prompts,
    maxNewTokens: decoding.mode === "generate" ? decoding.maxNewTokens : undefined,
    decodeSeconds,
    examplesPerSecond: test.length / decodeSeconds,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The training log beside the adapter, for the report's curves; undefined when there is none. */
async function trainingLogOf(dir: string): Promise<TrainingRecord[] | undefined> {
  try {
    return await readTrainingLog(`${dir}/metrics.jsonl`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
