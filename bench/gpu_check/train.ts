/**
 * One QLoRA training step on both builds: two LoRA-wrapped NF4 linears
 * (x -> h -> y), a squared-error loss, the backward through LoRA and the NF4
 * input gradient, the global norm, and AdamW with clipping. The step's
 * outputs, gradients and updated parameters are compared.
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { AdamWState } from "../../lib/backend/adamw.ts";
import type { DType } from "../../lib/backend/dtype.ts";
import { nf4Gemm, nf4GemmDx } from "../../lib/backend/gemm.ts";
import { type LoraAdapter, loraBackward, loraForward } from "../../lib/backend/lora.ts";
import { nf4Quantize, nf4Weight } from "../../lib/backend/nf4.ts";
import { type HostArray, Tensor } from "../../lib/backend/tensor.ts";
import { relativeError } from "../../tests/reference/compare.ts";
import type { Rng } from "../../tests/reference/random.ts";
import { attempt, type Check, TOL_TENSOR_CORE } from "./ops.ts";

/** Sizes of the two layers: x [M, D0] -> h [M, D1] -> y [M, D2]. */
const M = 61, D0 = 200, D1 = 136, D2 = 72, R = 8;
const SCALE = 16 / R;
const DROPOUT = 0.1;
const ADAMW = { lr: 2e-4, weightDecay: 0.01, maxGradNorm: 1.0 };

/** Offsets (in floats) of A1, B1, A2, B2 in the flat parameter vector. */
const LAYOUT = (() => {
  const sizes = [R * D0, D1 * R, R * D1, D2 * R];
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  return { offsets, n: sizes.reduce((a, b) => a + b, 0) };
})();

/** The inputs both builds start from. */
interface StepInputs {
  x: Float32Array;
  target: Float32Array;
  w1: { packed: Uint8Array; absmax: Float32Array };
  w2: { packed: Uint8Array; absmax: Float32Array };
  params: Float32Array;
}

/** What one build's step produced. */
interface StepResult {
  y: Float32Array;
  loss: number;
  grads: Float32Array;
  norm: number;
  params: Float32Array;
}

/** A tensor over part of another tensor's memory; freeing it frees nothing. */
function view(backend: Backend, base: Tensor<"f32">, offset: number, shape: number[]): Tensor<"f32"> {
  const owner = {
    freePointer() {},
    toHost<D extends DType>(t: Tensor<D>): HostArray<D> {
      return backend.toHost(t);
    },
  };
  return new Tensor(owner, Deno.UnsafePointer.offset(base.ptr, offset * 4) as Deno.PointerObject, shape, "f32");
}

function makeInputs(cpu: Backend, rng: Rng): StepInputs {
  const quantize = (rows: number, cols: number) => {
    using w = cpu.fromHost(rng.normals(rows * cols, 0.05), [rows, cols], "f32");
    using q = nf4Quantize(cpu, w, 64);
    return { packed: q.packed.toHost(), absmax: q.absmax.toHost() };
  };
  const params = new Float32Array(LAYOUT.n);
  const [a1, b1, a2, b2] = LAYOUT.offsets;
  params.set(rng.normals(R * D0).map(() => rng.uniform(-1, 1) / Math.sqrt(D0)), a1); // PEFT's A init
  params.set(rng.normals(D1 * R, 0.02), b1); // B is 0 in PEFT; nonzero here so A gets gradients
  params.set(rng.normals(R * D1).map(() => rng.uniform(-1, 1) / Math.sqrt(D1)), a2);
  params.set(rng.normals(D2 * R, 0.02), b2);
  return {
    x: rng.normals(M * D0),
    target: rng.normals(M * D2),
    w1: quantize(D1, D0),
    w2: quantize(D2, D1),
    params,
  };
}

function step(backend: Backend, inputs: StepInputs): StepResult {
  const { n, offsets: [a1, b1, a2, b2] } = LAYOUT;
  using opt = new AdamWState(backend, n);
  backend.check(backend.lib.symbols.lorac_copy_h2d(
    backend.ctx,
    opt.section(0),
    new Uint8Array(inputs.params.buffer),
    BigInt(4 * n),
  ));
  const p = (offset: number, shape: number[]) => view(backend, opt.buffer, offset, shape);
  const g = (offset: number, shape: number[]) => view(backend, opt.buffer, n + offset, shape);
  const lora1: LoraAdapter = { A: p(a1, [R, D0]), B: p(b1, [D1, R]), scale: SCALE, dropout: DROPOUT, seed: 11n };
  const lora2: LoraAdapter = { A: p(a2, [R, D1]), B: p(b2, [D2, R]), scale: SCALE, dropout: DROPOUT, seed: 12n };
  using w1 = nf4Weight(
    backend.fromHost(inputs.w1.packed, [D1, D0], "nf4"),
    backend.fromHost(inputs.w1.absmax, [inputs.w1.absmax.length], "f32"),
    64,
  );
  using w2 = nf4Weight(
    backend.fromHost(inputs.w2.packed, [D2, D1], "nf4"),
    backend.fromHost(inputs.w2.absmax, [inputs.w2.absmax.length], "f32"),
    64,
  );

  // Forward: h = x·W1ᵀ + lora1(x); y = h·W2ᵀ + lora2(h).
  using x = backend.fromHost(inputs.x, [M, D0], "f32");
  using h = backend.empty([M, D1], "f32");
  using xa1 = backend.empty([M, R], "f32");
  nf4Gemm(backend, x, w1, h);
  loraForward(backend, x, lora1, xa1, h);
  using y = backend.empty([M, D2], "f32");
  using xa2 = backend.empty([M, R], "f32");
  nf4Gemm(backend, h, w2, y);
  loraForward(backend, h, lora2, xa2, y);

  // Loss 0.5·mean over rows of |y - t|², and its gradient (y - t) / M.
  const yHost = y.toHost();
  const dyHost = yHost.map((v, i) => (v - inputs.target[i]) / M);
  const loss = yHost.reduce((s, v, i) => s + 0.5 * (v - inputs.target[i]) ** 2, 0) / M;

  // Backward: layer 2's LoRA and base input gradient into dh, then layer 1's LoRA.
  using dy = backend.fromHost(dyHost, [M, D2], "f32");
  using dh = backend.empty([M, D1], "f32");
  nf4GemmDx(backend, dy, w2, dh);
  loraBackward(backend, h, lora2, xa2, dy, { dA: g(a2, [R, D1]), dB: g(b2, [D2, R]), dx: dh });
  loraBackward(backend, x, lora1, xa1, dh, { dA: g(a1, [R, D0]), dB: g(b1, [D1, R]) });
  const grads = opt.buffer.toHost().slice(n, 2 * n);

  const norm = opt.update(ADAMW);
  return { y: yHost, loss, grads, norm, params: opt.buffer.toHost().slice(0, n) };
}

/**
 * Runs the step on both builds from the same inputs and compares y, the loss,
 * the gradients, their norm and the updated parameters (bf16 tensor-core
 * tolerance: the GPU's NF4 GEMMs round their inputs to bf16).
 *
 * @example
 * ```ts ignore
 * import { openBackend } from "../../lib/backend/backend.ts";
 * import { Rng } from "../../tests/reference/random.ts";
 * import { checkTrainingStep } from "./train.ts";
 * using cpu = await openBackend("cpu");
 * using gpu = await openBackend("cuda");
 * console.table(checkTrainingStep(cpu, gpu, new Rng(1)));
 * ```
 */
export function checkTrainingStep(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const tag = `training step (2 LoRA-wrapped NF4 linears ${D0}->${D1}->${D2}, M=${M}, r=${R}, dropout ${DROPOUT})`;
  let results: StepResult[] = [];
  const checks = [attempt(`${tag}: y`, TOL_TENSOR_CORE, () => {
    const inputs = makeInputs(cpu, rng);
    results = [step(cpu, inputs), step(gpu, inputs)];
    return relativeError(results[1].y, results[0].y);
  })];
  if (results.length !== 2) return checks;
  const [c, d] = results;
  return [
    ...checks,
    attempt(`${tag}: loss`, TOL_TENSOR_CORE, () => relativeError([d.loss], [c.loss])),
    attempt(`${tag}: gradients`, TOL_TENSOR_CORE, () => relativeError(d.grads, c.grads)),
    attempt(`${tag}: gradient norm`, TOL_TENSOR_CORE, () => relativeError([d.norm], [c.norm])),
    attempt(`${tag}: updated parameters`, TOL_TENSOR_CORE, () => relativeError(d.params, c.params)),
  ];
}
