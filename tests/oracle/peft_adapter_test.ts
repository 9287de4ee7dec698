// PEFT adapter files against PEFT 0.21.2 on the real stories260K Llama: PEFT loads the adapter we
// write with identical tensors and scaling; we read the adapters PEFT writes (f32 with rank and alpha
// patterns; bf16 with rsLoRA) with identical tensors; and our adapter_config.json has exactly the
// fields and values PEFT writes for the same settings. Adapters of some layers only (layers_to_transform)
// go both ways too.
import assert from "node:assert/strict";
import {
  adapterConfigJson,
  type PeftLoraConfig,
  type PeftLoraModule,
  peftScaling,
  readPeftAdapter,
  writePeftAdapter,
} from "../../lib/formats/peft_adapter.ts";
import { Rng } from "../reference/random.ts";
import { assertIdentical, type OracleOutputs, runOracle } from "./harness.ts";

const MODEL = new URL("../../../shared/models/stories260K/hf", import.meta.url).pathname;
const TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
// stories260K: hidden 64, 4 kv heads of 8 (k/v out 32), MLP 172, 5 layers.
const SHAPES: Record<string, [string, number, number]> = {
  q_proj: ["self_attn", 64, 64],
  k_proj: ["self_attn", 64, 32],
  v_proj: ["self_attn", 64, 32],
  o_proj: ["self_attn", 64, 64],
  gate_proj: ["mlp", 64, 172],
  up_proj: ["mlp", 64, 172],
  down_proj: ["mlp", 172, 64],
};

interface TheirCase {
  config: PeftLoraConfig;
  dtype: "float32" | "bfloat16";
}

/** Random nonzero LoRA weights for every target of `layers`: A ~ U(±1/sqrt(in)) as PEFT inits it, B normal. */
function randomModules(rng: Rng, r: number, layers = [0, 1, 2, 3, 4]): PeftLoraModule[] {
  const modules: PeftLoraModule[] = [];
  for (const layer of layers) {
    for (const target of TARGETS) {
      const [block, inF, outF] = SHAPES[target];
      const bound = 1 / Math.sqrt(inF);
      modules.push({
        module: `model.layers.${layer}.${block}.${target}`,
        r,
        inFeatures: inF,
        outFeatures: outF,
        a: Float32Array.from({ length: r * inF }, () => rng.uniform(-bound, bound)),
        b: rng.normals(outF * r, 0.1),
      });
    }
  }
  return modules;
}

function assertModuleEqual(out: OracleOutputs, prefix: string, m: PeftLoraModule, what: string): void {
  assertIdentical(m.a, out.get(`${prefix}.${m.module}.A`, "f32"), `${what}: ${m.module} lora_A`);
  assertIdentical(m.b, out.get(`${prefix}.${m.module}.B`, "f32"), `${what}: ${m.module} lora_B`);
}

function modulesIn(out: OracleOutputs, prefix: string): Set<string> {
  const names = [...out.tensors.keys()].filter((k) => k.startsWith(`${prefix}.`) && k.endsWith(".A"));
  return new Set(names.map((k) => k.slice(prefix.length + 1, -2)));
}

Deno.test("peft oracle: PEFT loads our adapter and we load PEFT's, tensors and scaling identical", async () => {
  const rng = new Rng();
  const seed = `seed ${rng.seed}`;
  const dir = await Deno.makeTempDir({ prefix: "lorac-peft-" });
  try {
    const ours: PeftLoraConfig = {
      r: 4,
      loraAlpha: 8,
      loraDropout: 0.05,
      targetModules: TARGETS,
      useRslora: false,
      baseModelNameOrPath: MODEL,
    };
    const modules = randomModules(rng, 4);
    await writePeftAdapter(`${dir}/ours`, { config: ours, modules });
    const topModules = randomModules(rng, 4, [3, 4]);
    await writePeftAdapter(`${dir}/ours_top`, { config: { ...ours, layersToTransform: [3, 4] }, modules: topModules });

    const theirs: TheirCase[] = [
      {
        dtype: "float32",
        config: {
          r: 4,
          loraAlpha: 16,
          loraDropout: 0.1,
          targetModules: TARGETS,
          useRslora: false,
          baseModelNameOrPath: MODEL,
          rankPattern: { "layers.1.self_attn.q_proj": 8 },
          alphaPattern: { down_proj: 3 },
        },
      },
      {
        dtype: "bfloat16",
        config: {
          r: 2,
          loraAlpha: 4,
          loraDropout: 0,
          targetModules: ["q_proj", "v_proj"],
          useRslora: true,
          baseModelNameOrPath: MODEL,
        },
      },
      {
        dtype: "float32",
        config: {
          r: 4,
          loraAlpha: 8,
          loraDropout: 0,
          targetModules: TARGETS,
          useRslora: false,
          baseModelNameOrPath: MODEL,
          layersToTransform: [2, 4],
        },
      },
    ];
    const out = await runOracle("peft_adapter_oracle.py", {
      model: MODEL,
      ours: `${dir}/ours`,
      ours_top: `${dir}/ours_top`,
      seed: rng.seed,
      theirs: theirs.map((c, i) => ({
        dir: `${dir}/theirs${i}`,
        r: c.config.r,
        lora_alpha: c.config.loraAlpha,
        lora_dropout: c.config.loraDropout,
        target_modules: c.config.targetModules,
        use_rslora: c.config.useRslora,
        rank_pattern: c.config.rankPattern ?? {},
        alpha_pattern: c.config.alphaPattern ?? {},
        layers_to_transform: c.config.layersToTransform ?? null,
        dtype: c.dtype,
      })),
    }, {});

    // Ours in PEFT: the same modules, weights and scaling, and the config PEFT parsed.
    assert.deepEqual(modulesIn(out, "ours"), new Set(modules.map((m) => m.module)), "modules PEFT adapted");
    for (const m of modules) assertModuleEqual(out, "ours", m, `ours in PEFT, ${seed}`);
    const oursScaling = out.params.ours_scaling as Record<string, number>;
    for (const m of modules) assert.equal(peftScaling(ours, m.module), oursScaling[m.module], m.module);
    assert.deepEqual(out.params.ours_config, {
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      use_rslora: false,
      target_modules: [...TARGETS].sort(),
      task_type: "CAUSAL_LM",
      peft_type: "LORA",
      base_model_name_or_path: MODEL,
    });

    // Ours of layers 3 and 4 only: PEFT adapts exactly those, with our weights.
    assert.deepEqual(modulesIn(out, "ours_top"), new Set(topModules.map((m) => m.module)), "ours_top in PEFT");
    for (const m of topModules) assertModuleEqual(out, "ours_top", m, `ours_top in PEFT, ${seed}`);
    assert.deepEqual(out.params.ours_top_layers, [3, 4]);

    // Theirs in ours.
    const theirScaling = out.params.theirs_scaling as Record<string, number>[];
    const theirJson = out.params.theirs_json as Record<string, unknown>[];
    for (const [i, c] of theirs.entries()) {
      const what = `PEFT's ${c.dtype} adapter #${i} in ours, ${seed}`;
      const adapter = await readPeftAdapter(`${dir}/theirs${i}`);
      assert.deepEqual(new Set(adapter.modules.map((m) => m.module)), modulesIn(out, `theirs${i}`), what);
      for (const m of adapter.modules) {
        assertModuleEqual(out, `theirs${i}`, m, what);
        assert.equal(peftScaling(adapter.config, m.module), theirScaling[i][m.module], `${what}: ${m.module} scaling`);
      }
      const readBack = { ...adapter.config, targetModules: [...adapter.config.targetModules].sort() };
      assert.deepEqual(readBack, {
        ...c.config,
        targetModules: [...c.config.targetModules].sort(),
        rankPattern: c.config.rankPattern,
        alphaPattern: c.config.alphaPattern,
      });
      // Our adapter_config.json for the same settings is PEFT's, field for field (target_modules is a set in PEFT).
      const mine = adapterConfigJson(c.config);
      const sorted = (j: Record<string, unknown>) => ({
        ...j,
        target_modules: [...(j.target_modules as string[])].sort(),
      });
      assert.deepEqual(sorted(mine), sorted(theirJson[i]), `adapter_config.json #${i}`);
      assert.deepEqual(Object.keys(mine), Object.keys(theirJson[i]), `adapter_config.json #${i} key order`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
