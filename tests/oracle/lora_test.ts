// One LoRA layer, forward and backward, against PEFT 0.21.2: PEFT's LoRA around a torch
// nn.Linear (ours: lorac_gemm + lorac_lora_forward / lorac_lora_backward) and around a
// bitsandbytes NF4 Linear4bit, plain and double-quantized (ours: the NF4 GEMM). Dropout is 0:
// PEFT's dropout mask comes from torch's RNG, which ours does not reproduce.
import { type Backend, openBackend } from "../../lib/backend/backend.ts";
import { fromBf16, toBf16 } from "../../lib/backend/dtype.ts";
import { type FloatTensor, gemm, nf4Gemm, nf4GemmDx } from "../../lib/backend/gemm.ts";
import { type LoraAdapter, loraBackward, loraForward, loraScale } from "../../lib/backend/lora.ts";
import { nf4DoubleDequantize, nf4DoubleQuantize, nf4Quantize } from "../../lib/backend/nf4.ts";
import { assertClose, poison } from "../reference/compare.ts";
import { Rng } from "../reference/random.ts";
import { bitsandbytesDefinesNf4, type OracleArray, runOracle, tensor } from "./harness.ts";

interface LoraCase {
  name: string;
  M: number;
  K: number;
  N: number;
  r: number;
  alpha: number;
  rslora: boolean;
  /** The frozen base: dense f32, NF4 (blocksize 64) or NF4 with a double-quantized absmax. */
  base: "dense" | "nf4" | "nf4_double";
  /** How X and dY reach our kernels (PEFT gets the same values in f32). */
  xDtype: "f32" | "bf16";
}

// N*K is a multiple of 64 for the NF4 bases; K = 130 makes NF4 blocks straddle rows.
const allCases: LoraCase[] = [
  { name: "dense_r8", M: 13, K: 96, N: 40, r: 8, alpha: 16, rslora: false, base: "dense", xDtype: "f32" },
  { name: "dense_rslora_r16", M: 5, K: 131, N: 23, r: 16, alpha: 8, rslora: true, base: "dense", xDtype: "f32" },
  { name: "dense_bf16_x", M: 9, K: 64, N: 72, r: 4, alpha: 32, rslora: false, base: "dense", xDtype: "bf16" },
  { name: "nf4_r8", M: 11, K: 130, N: 32, r: 8, alpha: 16, rslora: false, base: "nf4", xDtype: "f32" },
  { name: "nf4_double_rslora", M: 6, K: 200, N: 24, r: 4, alpha: 8, rslora: true, base: "nf4_double", xDtype: "f32" },
  { name: "nf4_bf16_x", M: 3, K: 96, N: 40, r: 8, alpha: 16, rslora: false, base: "nf4", xDtype: "bf16" },
];

const rng = new Rng();

interface LoraInputs {
  W: Float32Array;
  A: Float32Array;
  B: Float32Array;
  X: Float32Array;
  dY: Float32Array;
}

function makeInputs(c: LoraCase): LoraInputs {
  const round = (v: Float32Array) => c.xDtype === "bf16" ? fromBf16(toBf16(v)) : v;
  const bound = 1 / Math.sqrt(c.K); // PEFT's kaiming_uniform(a=sqrt(5)) range for A
  return {
    W: rng.normals(c.N * c.K, 0.05),
    A: Float32Array.from({ length: c.r * c.K }, () => rng.uniform(-bound, bound)),
    B: rng.normals(c.N * c.r, 0.05), // nonzero, unlike PEFT's initial B, so every path carries signal
    X: round(rng.normals(c.M * c.K)),
    dY: round(rng.normals(c.M * c.N)),
  };
}

/** X or dY on the device in the case's activation dtype. */
function activation(backend: Backend, c: LoraCase, values: Float32Array, shape: number[]): FloatTensor {
  return c.xDtype === "f32" ? backend.fromHost(values, shape, "f32") : backend.fromHost(toBf16(values), shape, "bf16");
}

/** Our layer: Y = X·Wᵀ + LoRA, then dA, dB and dX = dY·W + LoRA's part. */
function ours(backend: Backend, c: LoraCase, t: LoraInputs) {
  const { M, K, N, r } = c;
  using W = backend.fromHost(t.W, [N, K], "f32");
  using A = backend.fromHost(t.A, [r, K], "f32");
  using B = backend.fromHost(t.B, [N, r], "f32");
  using X = activation(backend, c, t.X, [M, K]);
  using dY = activation(backend, c, t.dY, [M, N]);
  using Y = backend.fromHost(poison(M * N), [M, N], "f32");
  using dX = backend.fromHost(poison(M * K), [M, K], "f32");
  using xa = backend.fromHost(poison(M * r), [M, r], "f32");
  using dA = backend.filled([r, K], "f32");
  using dB = backend.filled([N, r], "f32");
  const lora: LoraAdapter = { A, B, scale: loraScale(c.alpha, r, c.rslora), dropout: 0, seed: 0n };
  if (c.base === "dense") {
    gemm(backend, X, W, Y, { transB: true });
    loraForward(backend, X, lora, xa, Y);
    gemm(backend, dY, W, dX);
  } else {
    using q = nf4Quantize(backend, W, 64);
    if (c.base === "nf4_double") {
      using dq = nf4DoubleQuantize(backend, q.absmax);
      using absmax = nf4DoubleDequantize(backend, dq);
      backend.copy(q.absmax, absmax);
    }
    nf4Gemm(backend, X, q, Y);
    loraForward(backend, X, lora, xa, Y);
    nf4GemmDx(backend, dY, q, dX);
  }
  loraBackward(backend, X, lora, xa, dY, { dA, dB, dx: dX });
  return { y: Y.toHost(), dA: dA.toHost(), dB: dB.toHost(), dX: dX.toHost() };
}

// The NF4 cases need bitsandbytes as the NF4 reference (see harness.ts).
const nf4Reference = await bitsandbytesDefinesNf4();
const cases = allCases.filter((c) => c.base === "dense" || nf4Reference.ok);

Deno.test("oracle lora: forward and A, B, X gradients equal PEFT's (dense and NF4 bases) within 1e-5", async () => {
  const data = cases.map(makeInputs);
  const inputs: Record<string, OracleArray> = {};
  cases.forEach((c, i) => {
    const t = data[i];
    inputs[`${c.name}.W`] = tensor("f32", [c.N, c.K], t.W);
    inputs[`${c.name}.A`] = tensor("f32", [c.r, c.K], t.A);
    inputs[`${c.name}.B`] = tensor("f32", [c.N, c.r], t.B);
    inputs[`${c.name}.X`] = tensor("f32", [c.M, c.K], t.X);
    inputs[`${c.name}.dY`] = tensor("f32", [c.M, c.N], t.dY);
  });
  const params = { cases: cases.map(({ name, r, alpha, rslora, base }) => ({ name, r, alpha, rslora, base })) };
  const out = await runOracle("lora_oracle.py", params, inputs);
  const scaling = out.params.scaling as Record<string, number>;
  using backend = await openBackend("cpu");
  cases.forEach((c, i) => {
    const what = `${c.name} (seed ${rng.seed})`;
    const scale = loraScale(c.alpha, c.r, c.rslora);
    if (scale !== scaling[c.name]) throw new Error(`${what}: loraScale gives ${scale}, PEFT ${scaling[c.name]}`);
    const got = ours(backend, c, data[i]);
    for (const k of ["y", "dA", "dB", "dX"] as const) {
      assertClose(got[k], out.get(`${c.name}.${k}`, "f32"), 1e-5, `${what}: ${k}`);
    }
  });
});
