import assert from "node:assert/strict";
import { loracCacheDir, SMOLLM2_GGUF } from "../lib/model/default_model.ts";
import type { MetricsJson } from "../lib/report/metrics_json.ts";

// The demo needs SmolLM2-135M-Instruct; the test runs it only where the GGUF is already on disk (the oracle's
// copy or lorac's cache), never downloading it. The full demo takes minutes: `--quick` checks the same path.
const candidates = [
  Deno.env.get("LORAC_SMOLLM2_GGUF"),
  new URL(`../.oracle-venv/models/${SMOLLM2_GGUF.fileName}`, import.meta.url).pathname,
  `${loracCacheDir()}/models/${SMOLLM2_GGUF.fileName}`,
].filter((p): p is string => p !== undefined);
const gguf = candidates.find((p) => {
  try {
    return Deno.statSync(p).size === SMOLLM2_GGUF.bytes;
  } catch {
    return false;
  }
});

Deno.test({
  name: "demo: --quick runs kernels, model, data, training and prediction end to end" +
    (gguf ? "" : ` (skipped: no ${SMOLLM2_GGUF.fileName} in .oracle-venv/models/ or ${loracCacheDir()}/models/)`),
  ignore: gguf === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "lorac-demo-" });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../cli/main.ts", import.meta.url).pathname, "demo", "--quick"]
        .concat(["--out_dir", dir, "--base_model_name", gguf!]),
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    for (const step of ["[1/5] kernels", "[2/5] model", "[3/5] data", "[4/5] train", "[5/5] predict"]) {
      assert.ok(stderr.includes(step), `the demo says ${step}`);
    }
    assert.match(stdout, /^Accuracy: {3}\d\.\d{3}\n/);
    assert.ok(stdout.includes(`report: ${dir}/adapter/report.html\n`), stdout);
    const metrics: MetricsJson = JSON.parse(await Deno.readTextFile(`${dir}/adapter/metrics.json`));
    assert.deepEqual(metrics.labels, ["ham", "spam"]);
    assert.equal(metrics.invalid_predictions, 0, "label scoring always answers a label");
    assert.ok(stdout.startsWith(`Accuracy:   ${metrics.accuracy.toFixed(3)}`));
    await Deno.remove(dir, { recursive: true });
  },
});
