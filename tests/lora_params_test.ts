// LoRA parameters (lib/model/lora_params.ts): the flat [params | grads | m | v] layout with A and B
// views per module, PEFT's initialisation (A ~ U(±1/sqrt(in)) from a seed, B = 0), and the round
// trip through PEFT's adapter files, of every layer or some (layers_to_transform).
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { readPeftAdapter, writePeftAdapter } from "../lib/formats/peft_adapter.ts";
import { LoraParams } from "../lib/model/lora_params.ts";
import { LINEAR_NAMES, linearShape } from "../lib/model/weights.ts";
import { Rng } from "./reference/random.ts";
import { tinyConfig } from "./reference/tiny_llama.ts";

const config = tinyConfig({ hidden: 32, layers: 3, heads: 4, kvHeads: 2, intermediate: 44, vocab: 37, tied: true });
const rng = new Rng();

const layouts = [
  { options: {}, modules: 21, scale: 1, order: LINEAR_NAMES },
  {
    options: { r: 8, alpha: 16, targets: ["v_proj", "q_proj"] as const },
    modules: 6,
    scale: 2,
    order: ["q_proj", "v_proj"],
  },
  {
    options: { r: 4, alpha: 8, rslora: true, targets: ["down_proj"] as const },
    modules: 3,
    scale: 4,
    order: ["down_proj"],
  },
];

Deno.test("lora params: one buffer, A then B per module in layer and projection order, PEFT scaling", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  for (const { options, modules, scale, order } of layouts) {
    using lora = LoraParams.create(backend, config, options, rng.int(0, 1e9));
    const r = lora.options.r;
    assert.equal(lora.modules.length, modules);
    let offset = 0;
    for (const m of lora.modules) {
      const [out, inp] = linearShape(config, m.linear);
      assert.deepEqual([m.inFeatures, m.outFeatures, m.offset], [inp, out, offset], m.name);
      assert.deepEqual(m.adapter.A.shape, [r, inp]);
      assert.deepEqual(m.dB.shape, [out, r]);
      assert.equal(m.adapter.scale, scale, m.name);
      assert.equal(lora.module(m.layer, m.linear), m);
      offset += r * (inp + out);
    }
    assert.equal(lora.n, offset);
    assert.equal(lora.state.n, offset);
    // The targets keep Llama's projection order whatever order they were given in.
    assert.deepEqual(lora.modules.filter((m) => m.layer === 1).map((m) => m.linear), order);
  }
});

Deno.test("lora params: PEFT's initialisation from a seed, same seed same bytes", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  const seed = rng.int(0, 1e9);
  using a = LoraParams.create(backend, config, { r: 16 }, seed);
  using b = LoraParams.create(backend, config, { r: 16 }, seed);
  using c = LoraParams.create(backend, config, { r: 16 }, seed + 1);
  const pa = a.params();
  assert.deepEqual(pa, b.params(), `seed ${seed}: same seed, different bytes`);
  assert.notDeepEqual(pa, c.params(), `seed ${seed}: another seed, same bytes`);
  assert.ok(a.grads().every((g) => g === 0), "gradients start at zero");
  for (const m of a.modules) {
    const A = m.adapter.A.toHost(), B = m.adapter.B.toHost();
    const bound = 1 / Math.sqrt(m.inFeatures);
    assert.ok(A.every((x) => Math.abs(x) <= bound), `${m.name}: A outside ±1/sqrt(in)`);
    // Uniform on ±bound: the mean of |x| is bound / 2 (many draws: loose bounds).
    const meanAbs = A.reduce((s, x) => s + Math.abs(x), 0) / A.length;
    assert.ok(
      Math.abs(meanAbs / bound - 0.5) < 0.1,
      `${m.name} (seed ${seed}): mean |A| ${meanAbs} for bound ${bound}`,
    );
    assert.ok(B.every((x) => x === 0), `${m.name}: B must start at zero`);
  }
});

Deno.test("lora params: PEFT adapter files round-trip; mismatched adapters are refused", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using lora = LoraParams.create(backend, config, { r: 4, alpha: 8, dropout: 0.1, rslora: true }, rng.int(0, 1e9));
  lora.setParams(rng.normals(lora.n));
  const dir = await Deno.makeTempDir();
  try {
    await writePeftAdapter(dir, lora.toPeft("base-model"));
    const adapter = await readPeftAdapter(dir);
    assert.equal(adapter.config.baseModelNameOrPath, "base-model");
    using back = LoraParams.fromPeft(backend, config, adapter);
    assert.deepEqual(back.options, lora.options);
    assert.deepEqual(back.params(), lora.params());

    using other = LoraParams.create(backend, config, { r: 2, alpha: 8, rslora: true }, 0);
    assert.throws(() => other.loadPeft(adapter), /r=4, alpha=8, rsLoRA true; these adapters are r=2/);
    using fewer = LoraParams.create(backend, config, { r: 4, alpha: 8, rslora: true, targets: ["q_proj"] }, 0);
    assert.throws(() => fewer.loadPeft(adapter), /the adapter has 21 modules; this model's LoRA has 3/);
    const deeper = tinyConfig({ hidden: 32, layers: 4, heads: 4, kvHeads: 2, intermediate: 44, vocab: 37, tied: true });
    assert.throws(() => LoraParams.fromPeft(backend, deeper, adapter), /21 modules; this model's LoRA has 28/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lora params: adapters on some layers only (PEFT's layers_to_transform) round-trip and name their layers", async () => {
  using backend = await openBackend("cpu", { numThreads: 1 });
  using lora = LoraParams.create(backend, config, { r: 2, alpha: 4, layers: [2, 1, 2] }, 7);
  assert.deepEqual(lora.options.layers, [1, 2]);
  assert.equal(lora.firstLayer, 1);
  assert.equal(lora.modules.length, 14);
  assert.deepEqual(new Set(lora.modules.map((m) => m.layer)), new Set([1, 2]));
  assert.equal(lora.module(0, "q_proj"), undefined);
  lora.setParams(rng.normals(lora.n));
  const dir = await Deno.makeTempDir();
  try {
    await writePeftAdapter(dir, lora.toPeft(null));
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(json.layers_to_transform, [1, 2]);
    using back = LoraParams.fromPeft(backend, config, await readPeftAdapter(dir));
    assert.deepEqual(back.options, lora.options);
    assert.deepEqual(back.params(), lora.params());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  using all = LoraParams.create(backend, config, { layers: [0, 1, 2] }, 7);
  assert.deepEqual(all.toPeft().config.layersToTransform, [0, 1, 2]);
  assert.throws(
    () => LoraParams.create(backend, config, { layers: [3] }, 0),
    /layers_to_transform: 3 is not a layer of this model \(0 to 2\)/,
  );
  assert.throws(() => LoraParams.create(backend, config, { layers: [] }, 0), /name at least one layer/);
});
