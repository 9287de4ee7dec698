/**
 * LoRA adapters in HF PEFT's on-disk format, so PEFT loads ours and we load
 * theirs: a folder with adapter_config.json (PEFT 0.21's LoraConfig fields)
 * and adapter_model.safetensors, whose tensors are named
 * `base_model.model.<module>.lora_A.weight` ([r, in]) and `...lora_B.weight`
 * ([out, r]) for each adapted module, e.g.
 * `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.
 *
 * Reading accepts plain LoRA (rsLoRA, rank_pattern and alpha_pattern
 * included) with F32, F16 or BF16 weights; adapters that need more than
 * A and B (DoRA, bias terms, modules_to_save, trainable tokens) or that are
 * not for a causal LM are refused with a message naming the field.
 *
 * @module
 */

import { FLOAT_DTYPES, SafetensorsFile, type TensorToWrite, writeSafetensors } from "./safetensors.ts";
import { describe, oneLine } from "../util/describe.ts";

/** The adapter-level settings lorac writes and reads. */
export interface PeftLoraConfig {
  /** Default rank. */
  readonly r: number;
  /** Default alpha; the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA). */
  readonly loraAlpha: number;
  /** Dropout on the LoRA input during training. */
  readonly loraDropout: number;
  /** Module names (e.g. "q_proj") or, as PEFT allows, one regex string. */
  readonly targetModules: readonly string[] | string;
  /** rsLoRA scaling (alpha / sqrt(r)). */
  readonly useRslora: boolean;
  /** The base model (folder or Hub id) the adapter was trained on, or null. */
  readonly baseModelNameOrPath: string | null;
  /** The decoder layers adapted (PEFT's `layers_to_transform`); absent: every layer. */
  readonly layersToTransform?: readonly number[];
  /** Per-module rank overrides: PEFT's pattern (matches a module name's suffix) -> rank. */
  readonly rankPattern?: Readonly<Record<string, number>>;
  /** Per-module alpha overrides, keyed like rankPattern. */
  readonly alphaPattern?: Readonly<Record<string, number>>;
}

/** One adapted linear layer: y += scaling · B (A x). */
export interface PeftLoraModule {
  /** The module's name in the HF model, e.g. "model.layers.0.self_attn.q_proj". */
  readonly module: string;
  /** Rank (rows of A). */
  readonly r: number;
  /** Input features (columns of A). */
  readonly inFeatures: number;
  /** Output features (rows of B). */
  readonly outFeatures: number;
  /** A, row-major [r, inFeatures]. */
  readonly a: Float32Array;
  /** B, row-major [outFeatures, r]. */
  readonly b: Float32Array;
}

/** A LoRA adapter: its config and its adapted modules. */
export interface PeftAdapter {
  /** Adapter-level settings. */
  readonly config: PeftLoraConfig;
  /** The adapted modules, in any order. */
  readonly modules: readonly PeftLoraModule[];
}

/** An adapter folder that cannot be read or written; the message names the file and the problem. */
export class AdapterError extends Error {
  /** The file concerned. */
  readonly path: string;

  /** Creates the error; the message is `<path>: <problem>`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.name = "AdapterError";
    this.path = path;
  }
}

/** The adapter config file name. */
export const ADAPTER_CONFIG = "adapter_config.json";
/** The adapter weights file name. */
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** The PEFT release whose adapter_config.json fields and defaults we write. */
export const PEFT_FORMAT_VERSION = "0.21.2";

const PREFIX = "base_model.model.";

/** PEFT's get_pattern_key: the first pattern whose regex matches the end of `module` at a dot boundary. */
function patternValue(patterns: Readonly<Record<string, number>> | undefined, module: string): number | undefined {
  if (!patterns) return undefined;
  for (const [key, value] of Object.entries(patterns)) {
    if (patternRegExp(key).test(module)) return value;
  }
  return undefined;
}

/** PEFT's match of a rank_pattern / alpha_pattern key: the key as a regex over a dot-bounded suffix. */
function patternRegExp(key: string): RegExp {
  return new RegExp(`^(.*\\.)?(${key})$`);
}

/**
 * The factor on B·A·x for `module`: alpha / r, or alpha / sqrt(r) with
 * rsLoRA, after rank_pattern / alpha_pattern, as PEFT computes it.
 *
 * @example
 * ```ts
 * import { peftScaling } from "./peft_adapter.ts";
 * const config = { r: 8, loraAlpha: 16, loraDropout: 0, targetModules: ["q_proj"], useRslora: false, baseModelNameOrPath: null };
 * peftScaling(config, "model.layers.0.self_attn.q_proj"); // 2
 * ```
 */
export function peftScaling(config: PeftLoraConfig, module: string): number {
  const r = patternValue(config.rankPattern, module) ?? config.r;
  const alpha = patternValue(config.alphaPattern, module) ?? config.loraAlpha;
  return config.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/**
 * The adapter_config.json object PEFT 0.21 writes for a plain LoRA on a
 * causal LM, with lorac's settings filled in (keys sorted, as PEFT's
 * `json.dumps(..., sort_keys=True)` writes them).
 *
 * @example
 * ```ts
 * import { adapterConfigJson } from "./peft_adapter.ts";
 * const json = adapterConfigJson({
 *   r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: ["q_proj", "v_proj"], useRslora: false, baseModelNameOrPath: "m",
 * });
 * json.peft_type; // "LORA"
 * ```
 */
export function adapterConfigJson(config: PeftLoraConfig): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: config.alphaPattern ?? {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: config.baseModelNameOrPath,
    bias: "none",
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: config.layersToTransform ? [...config.layersToTransform] : null,
    loftq_config: {},
    lora_alpha: config.loraAlpha,
    lora_bias: false,
    lora_dropout: config.loraDropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    monteclora_config: null,
    peft_type: "LORA",
    peft_version: PEFT_FORMAT_VERSION,
    qalora_group_size: 16,
    r: config.r,
    rank_pattern: config.rankPattern ?? {},
    revision: null,
    target_modules: typeof config.targetModules === "string" ? config.targetModules : [...config.targetModules],
    target_parameters: null,
    task_type: "CAUSAL_LM",
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: config.useRslora,
    velora_config: null,
  };
  return Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function writeTextAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, text, { createNew: true });
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new AdapterError(path, `cannot write: ${(e as Error).message}`, { cause: e });
  }
  await Deno.rename(temp, path);
}

/**
 * Writes `adapter` to folder `dir` (created if missing) as PEFT does:
 * adapter_config.json and adapter_model.safetensors (F32, metadata
 * {"format": "pt"}). Each file is replaced atomically.
 *
 * @example
 * ```ts
 * import { readPeftAdapter, writePeftAdapter } from "./peft_adapter.ts";
 * const dir = await Deno.makeTempDir();
 * await writePeftAdapter(dir, {
 *   config: { r: 1, loraAlpha: 2, loraDropout: 0, targetModules: ["q_proj"], useRslora: false, baseModelNameOrPath: null },
 *   modules: [{
 *     module: "model.layers.0.self_attn.q_proj", r: 1, inFeatures: 2, outFeatures: 2,
 *     a: new Float32Array([1, 2]), b: new Float32Array([3, 4]),
 *   }],
 * });
 * (await readPeftAdapter(dir)).modules[0].b; // Float32Array [3, 4]
 * ```
 */
export async function writePeftAdapter(dir: string, adapter: PeftAdapter): Promise<void> {
  const weightsPath = `${dir}/${ADAPTER_WEIGHTS}`;
  const tensors: Record<string, TensorToWrite> = {};
  for (const m of adapter.modules) {
    if (m.a.length !== m.r * m.inFeatures || m.b.length !== m.outFeatures * m.r) {
      throw new AdapterError(
        weightsPath,
        `module ${m.module}: A has ${m.a.length} values and B ${m.b.length}, ` +
          `but r=${m.r}, in=${m.inFeatures}, out=${m.outFeatures} need ${m.r * m.inFeatures} and ${
            m.outFeatures * m.r
          }`,
      );
    }
    if (tensors[`${PREFIX}${m.module}.lora_A.weight`]) {
      throw new AdapterError(weightsPath, `module ${m.module} appears twice`);
    }
    tensors[`${PREFIX}${m.module}.lora_A.weight`] = { dtype: "F32", shape: [m.r, m.inFeatures], data: m.a };
    tensors[`${PREFIX}${m.module}.lora_B.weight`] = { dtype: "F32", shape: [m.outFeatures, m.r], data: m.b };
  }
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensors(weightsPath, tensors, { format: "pt" });
  await writeTextAtomic(`${dir}/${ADAPTER_CONFIG}`, JSON.stringify(adapterConfigJson(adapter.config), null, 2) + "\n");
}

/**
 * Parses the text of an adapter_config.json (`path` names it in errors) into
 * the settings lorac applies; adapters it cannot apply faithfully are refused
 * with an AdapterError naming the field.
 *
 * @example
 * ```ts
 * import { parseAdapterConfig } from "./peft_adapter.ts";
 * const text = '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}';
 * parseAdapterConfig("adapter_config.json", text).r; // 8
 * ```
 */
export function parseAdapterConfig(path: string, text: string): PeftLoraConfig {
  const fail = (problem: string): never => {
    throw new AdapterError(path, problem);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AdapterError(path, `cannot read the adapter config: ${oneLine((e as Error).message)}`, { cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail(`holds ${describe(json, 40)}, not a JSON object`);
  }
  const c = json as Record<string, unknown>;
  if (c.peft_type !== "LORA") fail(`peft_type is ${describe(c.peft_type)}: lorac reads LoRA adapters ("LORA")`);
  if (c.task_type != null && c.task_type !== "CAUSAL_LM") {
    fail(`task_type is ${describe(c.task_type)}: lorac's adapters are for causal LMs ("CAUSAL_LM")`);
  }
  const refuse: [string, (v: unknown) => boolean, string][] = [
    ["use_dora", (v) => v === true, "DoRA adapters are not supported"],
    ["bias", (v) => v != null && v !== "none", 'bias terms are not supported (bias must be "none")'],
    ["lora_bias", (v) => v === true, "lora_B bias terms are not supported"],
    ["fan_in_fan_out", (v) => v === true, "fan_in_fan_out (GPT-2 Conv1D layout) is not a Llama layout"],
    ["modules_to_save", (v) => Array.isArray(v) && v.length > 0, "fully trained extra modules are not supported"],
    ["trainable_token_indices", (v) => v != null, "trainable token embeddings are not supported"],
    ["use_qalora", (v) => v === true, "QA-LoRA is not supported"],
    ["layer_replication", (v) => v != null, "layer replication is not supported"],
  ];
  for (const [key, bad, why] of refuse) {
    if (bad(c[key])) fail(`${key} is ${describe(c[key])}: ${why}`);
  }
  const positive = (key: string): number => {
    const v = c[key];
    if (typeof v !== "number" || !(v > 0)) return fail(`"${key}" must be a positive number, got ${describe(v)}`);
    return v;
  };
  const pattern = (key: string): Record<string, number> | undefined => {
    const v = c[key] ?? {};
    if (typeof v !== "object" || Array.isArray(v)) return fail(`"${key}" must be an object of pattern -> number`);
    const entries = Object.entries(v as Record<string, unknown>);
    for (const [k, n] of entries) {
      if (typeof n !== "number" || !(n > 0)) {
        fail(`${key}[${describe(k)}] must be a positive number, got ${describe(n)}`);
      }
      // PEFT matches each key as a regex against module names; one that does not compile matches nothing it meant.
      try {
        patternRegExp(k);
      } catch {
        fail(`${key} key ${describe(k)} is not a valid regular expression; escape it or fix the adapter config`);
      }
    }
    return entries.length > 0 ? v as Record<string, number> : undefined;
  };
  const targets = c.target_modules;
  if (!(typeof targets === "string" || (Array.isArray(targets) && targets.every((t) => typeof t === "string")))) {
    fail(`target_modules must be a list of module names or a regex string, got ${describe(targets)}`);
  }
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== "number" || dropout < 0 || dropout >= 1) {
    fail(`lora_dropout must be in [0, 1), got ${describe(dropout)}`);
  }
  const layers = c.layers_to_transform ?? null;
  const layerList = typeof layers === "number" ? [layers] : layers;
  if (
    layerList !== null &&
    !(Array.isArray(layerList) && layerList.length > 0 && layerList.every((l) => Number.isInteger(l) && l >= 0))
  ) {
    fail(`layers_to_transform must be a layer index or a list of them, got ${describe(layers)}`);
  }
  const base = c.base_model_name_or_path ?? null;
  return {
    r: positive("r"),
    loraAlpha: positive("lora_alpha"),
    loraDropout: dropout as number,
    targetModules: targets as string[] | string,
    useRslora: c.use_rslora === true,
    baseModelNameOrPath: typeof base === "string" ? base : null,
    rankPattern: pattern("rank_pattern"),
    alphaPattern: pattern("alpha_pattern"),
    ...(layerList === null ? {} : { layersToTransform: layerList as number[] }),
  };
}

/**
 * Reads an adapter folder written by PEFT or by {@link writePeftAdapter}.
 * Weights come back as float32 whatever their stored dtype.
 *
 * @example
 * ```ts ignore
 * import { peftScaling, readPeftAdapter } from "./peft_adapter.ts";
 * const adapter = await readPeftAdapter("runs/arxiv5/adapter");
 * const m = adapter.modules[0];
 * peftScaling(adapter.config, m.module);
 * ```
 */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const configPath = `${dir}/${ADAPTER_CONFIG}`;
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    throw new AdapterError(configPath, `cannot read the adapter config: ${oneLine((e as Error).message)}`, {
      cause: e,
    });
  }
  const config = parseAdapterConfig(configPath, text);
  using file = await SafetensorsFile.open(`${dir}/${ADAPTER_WEIGHTS}`);
  return await readAdapterWeights(config, file);
}

/**
 * The adapter whose settings are `config` and whose weights are in `file`
 * (an adapter_model.safetensors): every tensor must be a lora_A / lora_B
 * float weight, paired per module, with shapes [r, in] and [out, r] and the
 * rank the config gives that module. Problems are AdapterErrors naming the file.
 *
 * @example
 * ```ts ignore
 * import { parseAdapterConfig, readAdapterWeights } from "./peft_adapter.ts";
 * import { SafetensorsFile } from "./safetensors.ts";
 * const config = parseAdapterConfig("adapter_config.json", await Deno.readTextFile("adapter_config.json"));
 * using file = await SafetensorsFile.open("adapter_model.safetensors");
 * (await readAdapterWeights(config, file)).modules.length;
 * ```
 */
export async function readAdapterWeights(config: PeftLoraConfig, file: SafetensorsFile): Promise<PeftAdapter> {
  const weightsPath = file.path;
  const fail = (problem: string): never => {
    throw new AdapterError(weightsPath, problem);
  };
  const pairs = new Map<string, { a?: string; b?: string }>();
  for (const name of file.tensors.keys()) {
    const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(name);
    if (!m) fail(`tensor ${describe(name)} is not a LoRA A/B weight (${PREFIX}<module>.lora_A.weight)`);
    const pair = pairs.get(m![1]) ?? {};
    pair[m![2] === "A" ? "a" : "b"] = name;
    pairs.set(m![1], pair);
  }
  const modules: PeftLoraModule[] = [];
  for (const [module, { a, b }] of pairs) {
    const what = `module ${describe(module)}`;
    if (!a || !b) return fail(`${what} has lora_${a ? "A" : "B"} but no lora_${a ? "B" : "A"}`);
    const sa = file.info(a).shape, sb = file.info(b).shape;
    if (sa.length !== 2 || sb.length !== 2 || sa[0] !== sb[1]) {
      fail(`${what}: lora_A [${sa}] and lora_B [${sb}] are not [r, in] and [out, r]`);
    }
    const expected = patternValue(config.rankPattern, module) ?? config.r;
    if (sa[0] !== expected) fail(`${what} has rank ${sa[0]} but the config says r=${expected}`);
    for (const name of [a, b]) {
      const dtype = file.info(name).dtype;
      if (!FLOAT_DTYPES.includes(dtype)) {
        fail(
          `tensor ${describe(name)} is ${dtype}, not a float type (${FLOAT_DTYPES.join(", ")}); re-save the adapter`,
        );
      }
    }
    modules.push({
      module,
      r: sa[0],
      inFeatures: sa[1],
      outFeatures: sb[0],
      a: await file.readFloat32(a),
      b: await file.readFloat32(b),
    });
  }
  if (modules.length === 0) fail("holds no LoRA weights");
  return { config, modules };
}
