/**
 * `deno bench -A bench/lora_adamw_bench.ts`: LoRA forward and backward on
 * SmolLM2-135M and Llama-3.2-1B projection shapes at 2048 tokens (r = 16),
 * without dropout and with PEFT's usual 0.05,
 * and one AdamW step (with the global norm) over the flat buffer of SmolLM2's
 * LoRA parameters (r = 16 on all seven projections of 30 layers).
 *
 * @module
 */

import { AdamWState } from "../lib/backend/adamw.ts";
import { openBackend } from "../lib/backend/backend.ts";
import { loraBackward, loraForward } from "../lib/backend/lora.ts";
import { Rng } from "../tests/reference/random.ts";

const backend = await openBackend("cpu");
const rng = new Rng(1);
const M = 2048, r = 16;

for (const [name, N, K] of [["smollm2 q_proj", 576, 576], ["llama-1b q_proj", 2048, 2048]] as const) {
  const x = backend.fromHost(rng.normals(M * K), [M, K], "f32");
  const A = backend.fromHost(rng.normals(r * K, 0.05), [r, K], "f32");
  const B = backend.fromHost(rng.normals(N * r, 0.05), [N, r], "f32");
  const xa = backend.empty([M, r], "f32");
  const y = backend.filled([M, N], "f32");
  const dy = backend.fromHost(rng.normals(M * N), [M, N], "f32");
  const dA = backend.filled([r, K], "f32");
  const dB = backend.filled([N, r], "f32");
  const dx = backend.filled([M, K], "f32");
  // Forward: X·Aᵀ then (XA)·Bᵀ; backward: dB, dXA, dA and dX, each 2·M·r·(K or N).
  const gflop = (n: number) => `${(n / 1e9).toFixed(2)} GFLOP`;
  for (const dropout of [0, 0.05]) {
    const lora = { A, B, scale: 2, dropout, seed: 0n };
    const what = `${name} ${M}x${N}x${K} r${r} dropout ${dropout}`;
    Deno.bench(`lora forward ${what} (${gflop(2 * M * r * (K + N))})`, { group: "lora" }, () => {
      loraForward(backend, x, lora, xa, y);
    });
    Deno.bench(`lora backward ${what} (${gflop(4 * M * r * (K + N))})`, { group: "lora" }, () => {
      loraBackward(backend, x, lora, xa, dy, { dA, dB, dx });
    });
  }
}

// SmolLM2: 30 layers x r·(in + out) summed over q, k, v, o, gate, up, down.
const perLayer = r * ((576 + 576) * 2 + (576 + 192) * 2 + (576 + 1536) * 3);
const n = 30 * perLayer;
const opt = new AdamWState(backend, n);
backend.write(opt.buffer, rng.normals(4 * n, 0.01).map(Math.abs));
Deno.bench(`adamw step + global norm, ${(n / 1e6).toFixed(2)}M params (${(n * 28 / 1e6).toFixed(0)} MB moved)`, {
  group: "adamw",
}, () => {
  opt.update({ lr: 1e-4, maxGradNorm: 1 });
});
