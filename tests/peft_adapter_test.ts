import assert from "node:assert/strict";
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterConfigJson,
  AdapterError,
  type PeftLoraConfig,
  type PeftLoraModule,
  peftScaling,
  readPeftAdapter,
  writePeftAdapter,
} from "../lib/formats/peft_adapter.ts";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../lib/formats/safetensors.ts";
import { fromBf16, toBf16 } from "../lib/backend/dtype.ts";
import { Rng } from "./reference/random.ts";

const CONFIG: PeftLoraConfig = {
  r: 3,
  loraAlpha: 7,
  loraDropout: 0.05,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
  useRslora: false,
  baseModelNameOrPath: "../shared/models/stories260K/hf",
};

/** Random LoRA modules for a stories260K-shaped model (odd sizes: 64 -> 172 -> 64, 32-wide k/v). */
function randomModules(rng: Rng, r: number, layers = 2): PeftLoraModule[] {
  const shapes: [string, number, number][] = [
    ["self_attn.q_proj", 64, 64],
    ["self_attn.k_proj", 64, 32],
    ["self_attn.v_proj", 64, 32],
    ["self_attn.o_proj", 64, 64],
    ["mlp.gate_proj", 64, 172],
    ["mlp.up_proj", 64, 172],
    ["mlp.down_proj", 172, 64],
  ];
  const out: PeftLoraModule[] = [];
  for (let l = 0; l < layers; l++) {
    for (const [name, inF, outF] of shapes) {
      out.push({
        module: `model.layers.${l}.${name}`,
        r,
        inFeatures: inF,
        outFeatures: outF,
        a: rng.normals(r * inF, 0.1),
        b: rng.normals(outF * r, 0.1),
      });
    }
  }
  return out;
}

Deno.test("peft adapter: ours round-trips, with PEFT's names, shapes, dtype and metadata", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  try {
    const modules = randomModules(rng, 3);
    await writePeftAdapter(`${dir}/adapter`, { config: CONFIG, modules });
    const back = await readPeftAdapter(`${dir}/adapter`);
    assert.deepEqual(back.config, { ...CONFIG, rankPattern: undefined, alphaPattern: undefined });
    const byName = new Map(back.modules.map((m) => [m.module, m]));
    assert.equal(byName.size, modules.length);
    for (const m of modules) assert.deepEqual(byName.get(m.module), m, `${m.module}, seed ${rng.seed}`);

    using f = await SafetensorsFile.open(`${dir}/adapter/${ADAPTER_WEIGHTS}`);
    assert.deepEqual(f.metadata, { format: "pt" });
    const a = f.info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
    const b = f.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    assert.deepEqual([a.dtype, a.shape, b.dtype, b.shape], ["F32", [3, 172], "F32", [64, 3]]);
    // safetensors' own order for one dtype: by name.
    const names = [...f.tensors.keys()];
    assert.deepEqual(names, [...names].sort());

    const text = await Deno.readTextFile(`${dir}/adapter/${ADAPTER_CONFIG}`);
    const json = JSON.parse(text);
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted as PEFT writes them");
    assert.equal(json.peft_type, "LORA");
    assert.equal(json.task_type, "CAUSAL_LM");
    assert.equal(json.r, 3);
    assert.equal(json.lora_alpha, 7);
    assert.equal(json.bias, "none");
    assert.deepEqual(json.target_modules, CONFIG.targetModules);
    assert.ok(text.startsWith('{\n  "alora_invocation_tokens": null,'), "two-space indented JSON");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peft adapter: scaling follows PEFT: alpha/r, rsLoRA alpha/sqrt(r), rank and alpha patterns", () => {
  const cases: [Partial<PeftLoraConfig>, string, number][] = [
    [{}, "model.layers.0.self_attn.q_proj", 7 / 3],
    [{ useRslora: true }, "model.layers.0.self_attn.q_proj", 7 / Math.sqrt(3)],
    [{ rankPattern: { q_proj: 8 } }, "model.layers.0.self_attn.q_proj", 7 / 8],
    [{ rankPattern: { q_proj: 8 } }, "model.layers.0.self_attn.k_proj", 7 / 3],
    [{ alphaPattern: { "layers.1.mlp.up_proj": 2 } }, "model.layers.1.mlp.up_proj", 2 / 3],
    [{ alphaPattern: { "layers.1.mlp.up_proj": 2 } }, "model.layers.11.mlp.up_proj", 7 / 3],
    // A pattern matches at a dot boundary only: "proj" is not "q_proj".
    [{ rankPattern: { proj: 1 } }, "model.layers.0.self_attn.q_proj", 7 / 3],
  ];
  for (const [over, module, want] of cases) {
    assert.equal(peftScaling({ ...CONFIG, ...over }, module), want, `${JSON.stringify(over)} ${module}`);
  }
});

/** Writes a PEFT-style adapter folder by hand: a config object and tensors by name. */
async function handMade(dir: string, config: Record<string, unknown>, tensors: Record<string, TensorToWrite>) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/${ADAPTER_CONFIG}`, JSON.stringify(config));
  await writeSafetensors(`${dir}/${ADAPTER_WEIGHTS}`, tensors, { format: "pt" });
}

Deno.test("peft adapter: reads PEFT-style folders with bf16 weights and a rank pattern", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  try {
    const a = toBf16(rng.normals(8 * 5)), b = toBf16(rng.normals(7 * 8));
    const a2 = rng.normals(2 * 5), b2 = rng.normals(3 * 2);
    const base = adapterConfigJson(CONFIG);
    await handMade(dir, {
      ...base,
      r: 2,
      rank_pattern: { "layers.0.self_attn.q_proj": 8 },
      target_modules: "q_proj|v_proj",
    }, {
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": { dtype: "BF16", shape: [8, 5], data: a },
      "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": { dtype: "BF16", shape: [7, 8], data: b },
      "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight": { dtype: "F32", shape: [2, 5], data: a2 },
      "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight": { dtype: "F32", shape: [3, 2], data: b2 },
    });
    const adapter = await readPeftAdapter(dir);
    assert.equal(adapter.config.targetModules, "q_proj|v_proj");
    assert.deepEqual(adapter.config.rankPattern, { "layers.0.self_attn.q_proj": 8 });
    const q = adapter.modules.find((m) => m.module === "model.layers.0.self_attn.q_proj")!;
    const v = adapter.modules.find((m) => m.module === "model.layers.0.self_attn.v_proj")!;
    assert.deepEqual([q.r, q.inFeatures, q.outFeatures, v.r, v.inFeatures, v.outFeatures], [8, 5, 7, 2, 5, 3]);
    assert.deepEqual(q.a, fromBf16(a), `seed ${rng.seed}`);
    assert.deepEqual(q.b, fromBf16(b), `seed ${rng.seed}`);
    assert.deepEqual(v.a, a2, `seed ${rng.seed}`);
    assert.equal(peftScaling(adapter.config, q.module), 7 / 8);
    assert.equal(peftScaling(adapter.config, v.module), 7 / 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
const B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
const goodTensors = (): Record<string, TensorToWrite> => ({
  [A]: { dtype: "F32", shape: [3, 4], data: new Float32Array(12) },
  [B]: { dtype: "F32", shape: [5, 3], data: new Float32Array(15) },
});

const REFUSED: {
  what: string;
  config?: Record<string, unknown>;
  tensors?: Record<string, TensorToWrite>;
  error: RegExp;
}[] = [
  { what: "not LoRA", config: { peft_type: "IA3" }, error: /peft_type is "IA3": lorac reads LoRA adapters/ },
  { what: "a classifier adapter", config: { task_type: "SEQ_CLS" }, error: /task_type is "SEQ_CLS"/ },
  { what: "DoRA", config: { use_dora: true }, error: /use_dora is true: DoRA adapters are not supported/ },
  { what: "bias terms", config: { bias: "all" }, error: /bias is "all": bias terms are not supported/ },
  { what: "modules_to_save", config: { modules_to_save: ["lm_head"] }, error: /modules_to_save is \["lm_head"\]/ },
  { what: "trainable tokens", config: { trainable_token_indices: [5] }, error: /trainable_token_indices is \[5\]/ },
  { what: "a bad rank", config: { r: 0 }, error: /"r" must be a positive number, got 0/ },
  {
    what: "bad target_modules",
    config: { target_modules: 5 },
    error: /target_modules must be a list of module names or a regex/,
  },
  {
    what: "a tensor that is not A/B",
    tensors: {
      ...goodTensors(),
      "base_model.model.lm_head.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    },
    error: /tensor "base_model.model.lm_head.weight" is not a LoRA A\/B weight/,
  },
  { what: "A without B", tensors: { [A]: goodTensors()[A] }, error: /has lora_A but no lora_B/ },
  {
    what: "A and B ranks disagree",
    tensors: { ...goodTensors(), [B]: { dtype: "F32", shape: [5, 2], data: new Float32Array(10) } },
    error: /lora_A \[3,4\] and lora_B \[5,2\] are not \[r, in\] and \[out, r\]/,
  },
  {
    what: "rank differs from the config",
    config: { r: 4 },
    error: /has rank 3 but the config says r=4/,
  },
  {
    what: "integer weights",
    tensors: { ...goodTensors(), [A]: { dtype: "I32", shape: [3, 4], data: new Int32Array(12) } },
    error: /is I32, not a float type/,
  },
];

Deno.test("peft adapter: adapters lorac cannot apply faithfully are refused, naming the field", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    for (const c of REFUSED) {
      await t.step(c.what, async () => {
        const sub = `${dir}/${c.what.replaceAll(/\W/g, "_")}`;
        await handMade(sub, { ...adapterConfigJson(CONFIG), ...c.config }, c.tensors ?? goodTensors());
        await assert.rejects(
          readPeftAdapter(sub),
          (e: unknown) => e instanceof AdapterError && c.error.test(e.message),
        );
      });
    }
    await t.step("a missing folder", async () => {
      await assert.rejects(readPeftAdapter(`${dir}/nope`), /nope\/adapter_config.json: cannot read the adapter config/);
    });
    await t.step("inconsistent modules on write", async () => {
      const bad = { ...randomModules(new Rng(1), 2, 1)[0], r: 3 };
      await assert.rejects(
        writePeftAdapter(`${dir}/w`, { config: CONFIG, modules: [bad] }),
        /A has 128 values and B 128/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
