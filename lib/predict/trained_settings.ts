/**
 * What prediction takes over from training: `lorac train` writes
 * training_args.json beside the adapter (lib/train/trainer.ts), holding the
 * label set, the prompt template and its few-shot exemplars, the text and
 * label columns, multi-label mode, max_seq_length, the base model and the
 * tokenizer it used. Prediction reads the same prompts the adapter was
 * trained on from there, so `predict` needs no flag that `train` had; a flag
 * given to `predict` still wins.
 *
 * Only the fields prediction uses are read, each checked for its type; an
 * adapter without the file (one trained by PEFT, say) simply has no
 * settings.
 *
 * @module
 */

import type { Exemplar } from "../data/prompts.ts";

/** The file `lorac train` writes beside the adapter. */
export const TRAINING_ARGS_FILE = "training_args.json";

/** The training settings that shape prediction's prompts; each is absent when the file lacks it. */
export interface TrainedSettings {
  /** Where they were read from. */
  readonly file: string;
  /** The label set, in order. */
  readonly labels?: readonly string[];
  /** The prompt template's source text. */
  readonly template?: string;
  /** The few-shot exemplars shown in every prompt. */
  readonly exemplars?: readonly Exemplar[];
  /** The text columns. */
  readonly textFields?: readonly string[];
  /** The gold label column. */
  readonly labelColumn?: string;
  /** Multi-label mode. */
  readonly multiLabel?: boolean;
  /** The longest example, in tokens. */
  readonly maxSeqLength?: number;
  /** The base model the adapter was trained on (as resolved: a folder, a GGUF path or a Hub id). */
  readonly baseModelName?: string;
  /** A tokenizer.json used instead of the model's own. */
  readonly tokenizer?: string;
  /** How the frozen base was stored. */
  readonly baseDtype?: "nf4" | "bf16" | "f32";
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
const isExemplars = (v: unknown): v is Exemplar[] =>
  Array.isArray(v) &&
  v.every((e) => typeof e === "object" && e !== null && typeof e.text === "string" && typeof e.answer === "string");

/**
 * Picks the prediction settings out of parsed training_args.json contents;
 * a field of the wrong type is an error naming `file` and the field.
 *
 * @example
 * ```ts
 * import { parseTrainedSettings } from "./trained_settings.ts";
 * const s = parseTrainedSettings({ labels: ["ham", "spam"], textFields: ["subject", "body"], loraR: 8 }, "a.json");
 * s.labels; // ["ham", "spam"]
 * ```
 */
export function parseTrainedSettings(json: unknown, file: string): TrainedSettings {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file}: expected a JSON object of training options`);
  }
  const o = json as Record<string, unknown>;
  const out: Record<string, unknown> = { file };
  const take = (key: keyof TrainedSettings, ok: (v: unknown) => boolean, what: string) => {
    const v = o[key];
    if (v === undefined || v === null) return;
    if (!ok(v)) throw new Error(`${file}: "${key}" should be ${what}, found ${JSON.stringify(v)}`);
    out[key] = v;
  };
  take("labels", isStrings, "a list of labels");
  take("template", (v) => typeof v === "string", "the template text");
  take("exemplars", isExemplars, "a list of { text, answer }");
  take("textFields", isStrings, "a list of column names");
  take("labelColumn", (v) => typeof v === "string", "a column name");
  take("multiLabel", (v) => typeof v === "boolean", "true or false");
  take("maxSeqLength", (v) => Number.isInteger(v) && (v as number) > 0, "a positive integer");
  take("baseModelName", (v) => typeof v === "string", "a model path or Hub id");
  take("tokenizer", (v) => typeof v === "string", "a tokenizer.json path");
  take("baseDtype", (v) => v === "nf4" || v === "bf16" || v === "f32", "nf4, bf16 or f32");
  return out as unknown as TrainedSettings;
}

/**
 * Reads `<dir>/training_args.json`, or returns null when there is none.
 *
 * @example
 * ```ts
 * import { readTrainedSettings } from "./trained_settings.ts";
 * const dir = await Deno.makeTempDir();
 * await readTrainedSettings(dir); // null
 * await Deno.writeTextFile(`${dir}/training_args.json`, '{"labels":["a","b"],"maxSeqLength":256}');
 * (await readTrainedSettings(dir))?.maxSeqLength; // 256
 * ```
 */
export async function readTrainedSettings(dir: string): Promise<TrainedSettings | null> {
  const file = `${dir.replace(/\/+$/, "")}/${TRAINING_ARGS_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message}); retrain or delete it`, { cause: e });
  }
  return parseTrainedSettings(json, file);
}
