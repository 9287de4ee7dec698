/**
 * lorac: instruction-tunes a Llama-family LLM to classify texts, with LoRA
 * adapters on a frozen 4-bit NF4 base and its own CPU and CUDA kernels.
 *
 * The same path as the command line (`lorac train`, `lorac predict`), from
 * TypeScript: train adapters on CSV files, then predict a test file and get
 * the scores and the report files.
 *
 * @example
 * ```ts ignore
 * import { predict, train } from "@lorac/lorac";
 * await train({
 *   basePath: "dataset", // train.csv, validation.csv, test.csv
 *   textFields: ["subject", "body"],
 *   outputDir: "runs/spam", // the adapter, in PEFT's format
 * });
 * const { metrics, files } = await predict({ basePath: "dataset", outputDir: "runs/spam", decode: "score" });
 * console.log(metrics.accuracy, files); // results.txt, metrics.json, report.html, predictions.csv
 * ```
 *
 * The layers below are public too: the data (CSV rows to examples, the
 * seed's prompt template, few-shot exemplars, truncation), the model
 * (loading HF folders, Hub ids and GGUF files; the Llama forward and
 * backward; LoRA parameters in PEFT's layout; greedy generation and label
 * scoring), the metrics and reports, the dataset builders, and the native
 * kernel layer (a backend, tensors, and the NF4, LoRA, GEMM and AdamW ops):
 *
 * @example
 * ```ts
 * import { nf4Gemm, nf4Quantize, openBackend } from "@lorac/lorac";
 * using backend = await openBackend("auto");
 * using w = backend.fromHost(new Float32Array(64 * 64).fill(0.25), [64, 64], "f32");
 * using q = nf4Quantize(backend, w);
 * using x = backend.fromHost(new Float32Array(64).fill(1), [1, 64], "f32");
 * using y = backend.empty([1, 64], "f32");
 * nf4Gemm(backend, x, q, y);
 * ```
 *
 * @module
 */

// Training and prediction: the seed's train.py and predict.py.
export { train, type TrainOptions, type TrainResult } from "./lib/train/trainer.ts";
export { predict, type PredictOptions, type PredictResult } from "./lib/predict/predict.ts";
export { type DecodeMode, labelOfAnswer, softmax } from "./lib/predict/decode.ts";

// Data: CSV files, examples, labels, prompts.
export { type CsvTable, parseCsv, readCsv } from "./lib/data/csv.ts";
export { DataError } from "./lib/data/errors.ts";
export {
  checkGold,
  type Example,
  type ExampleOptions,
  examplesFromTable,
  joinTextFields,
  labelSet,
  readExamples,
} from "./lib/data/examples.ts";
export { type Exemplar, PromptTemplate, SEED_TEMPLATE } from "./lib/data/prompts.ts";
export { pickExemplars } from "./lib/data/few_shot.ts";
export { fitText, type TextTokenizer } from "./lib/data/truncate.ts";
export { type ArxivBuildOptions, buildArxivDataset } from "./lib/data/builders/arxiv.ts";
export { buildSpamAssassinDataset, type SpamAssassinBuildOptions } from "./lib/data/builders/spam_assassin.ts";

// Metrics and reports.
export {
  type ClassificationMetrics,
  classificationMetrics,
  classificationReport,
} from "./lib/metrics/classification.ts";
export { type MultiLabelMetrics, multiLabelMetrics, multiLabelReport } from "./lib/metrics/multilabel.ts";
export { type Metrics, type MetricsJson, metricsJson } from "./lib/report/metrics_json.ts";
export { type OutputPaths, outputPaths, type RunOutputs, writeRunOutputs } from "./lib/report/outputs.ts";
export { type PredictionRow, predictionsCsv } from "./lib/report/predictions.ts";
export { reportHtml } from "./lib/report/html.ts";
export { resultsText } from "./lib/report/results.ts";

// Models, tokenizers, adapters, inference.
export { describeModel, type LoadedModel, loadModel, type LoadOptions, ModelLoadError } from "./lib/model/load.ts";
export { DEFAULT_MODEL_ID, defaultModelSource } from "./lib/model/default_model.ts";
export { LlamaModel, type LlamaModelOptions } from "./lib/model/llama.ts";
export { DEFAULT_LORA_OPTIONS, type LoraOptions, LoraParams } from "./lib/model/lora_params.ts";
export { generateGreedy, type GreedyOptions, scoreContinuations } from "./lib/model/generate.ts";
export { Tokenizer } from "./lib/tokenizer/tokenizer.ts";
export { type PeftAdapter, readPeftAdapter, writePeftAdapter } from "./lib/formats/peft_adapter.ts";

// The native kernel layer.
export { Backend, type BackendOptions, type DeviceChoice, KernelError, openBackend } from "./lib/backend/backend.ts";
export { byteSize, type DType, fromBf16, toBf16 } from "./lib/backend/dtype.ts";
export { type HostArray, Tensor } from "./lib/backend/tensor.ts";
export { LibraryError, loadLibrary } from "./lib/backend/loader.ts";
export {
  nf4Dequantize,
  type Nf4DoubleAbsmax,
  nf4DoubleDequantize,
  nf4DoubleQuantize,
  nf4Quantize,
  type Nf4Weight,
} from "./lib/backend/nf4.ts";
export { type FloatTensor, gemm, type GemmOptions, nf4Gemm, nf4GemmDx } from "./lib/backend/gemm.ts";
export { type LoraAdapter, loraBackward, loraForward, loraScale } from "./lib/backend/lora.ts";
export { type AdamWConfig, AdamWState } from "./lib/backend/adamw.ts";
