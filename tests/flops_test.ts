import assert from "node:assert/strict";
import { readLlamaConfig } from "../lib/formats/llama_config.ts";
import { attentionPairs, linearParameterCount, trainingFlops } from "../lib/train/flops.ts";

const config = await readLlamaConfig(new URL("../../shared/models/stories260K/hf", import.meta.url).pathname);

Deno.test("flops: linear parameters, causal pairs and the step total by hand", () => {
  // stories260K per layer: q 64x64, k and v 32x64, o 64x64, gate/up 172x64, down 64x172.
  assert.equal(linearParameterCount(config), 5 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64));
  const table: [number[], number][] = [[[0], 0], [[0, 1], 1], [[0, 3, 5], 6 + 3], [[0, 4, 4, 5], 10 + 0 + 1]];
  for (const [cu, want] of table) assert.equal(attentionPairs(new Int32Array(cu)), want, `${cu}`);
  const work = { tokens: 10, attentionPairs: 30, lossRows: 4 };
  const want = 10 * (4 * 226560 + 6 * 1000) + 12 * 5 * 8 * 8 * 30 + 4 * 512 * 64 * 4;
  assert.equal(trainingFlops(config, 1000, work), want);
});
