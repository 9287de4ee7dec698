import assert from "node:assert/strict";
import { type Backend, KernelError, openBackend } from "../lib/backend/backend.ts";
import { AdamWState } from "../lib/backend/adamw.ts";
import { assertClose, poison } from "./reference/compare.ts";
import { type AdamWRefConfig, type AdamWRefState, adamwStepRef, globalNormRef } from "./reference/adamw.ts";
import { Rng } from "./reference/random.ts";

/** lorac_global_norm of host values, into a poisoned output. */
function globalNorm(backend: Backend, grads: Float32Array): number {
  using g = backend.fromHost(grads, [grads.length], "f32");
  using norm = backend.fromHost(poison(1), [1], "f32");
  backend.check(backend.lib.symbols.lorac_global_norm(backend.ctx, g.ptr, BigInt(grads.length), norm.ptr));
  return norm.toHost()[0];
}

Deno.test("adamw: the global norm matches the reference and does not depend on the thread count", async () => {
  using one = await openBackend("cpu", { numThreads: 1 });
  using two = await openBackend("cpu", { numThreads: 2 });
  using three = await openBackend("cpu", { numThreads: 3 });
  const rng = new Rng();
  // 200003 spans several fixed 65536-element chunks.
  for (const n of [1, 7, 1001, 200003]) {
    const g = rng.normals(n, 10 ** rng.uniform(-3, 2));
    const what = `n=${n} (seed ${rng.seed})`;
    const got = globalNorm(one, g);
    assertClose([got], [globalNormRef(g)], 1e-6, what);
    assert.equal(globalNorm(two, g), got, `${what}: 2 threads`);
    assert.equal(globalNorm(three, g), got, `${what}: 3 threads`);
  }
});

const configs: (AdamWRefConfig & { name: string })[] = [
  { name: "no decay, no clipping", lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 },
  { name: "decay", lr: 2e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0 },
  { name: "clipping that bites", lr: 1e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.01, maxGradNorm: 1 },
  { name: "clipping above the norm", lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1e4 },
];

Deno.test("adamw: 10 steps match torch's AdamW with clip_grad_norm_ (float64 reference)", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const n = 1001;
  for (const c of configs) {
    const what = `${c.name} (seed ${rng.seed})`;
    // The C ABI carries hyperparameters as float32: 1 - fround(0.999) is 1.3e-5 away
    // from 0.001 in relative terms, so the reference runs with the rounded values.
    const rounded: AdamWRefConfig = {
      lr: Math.fround(c.lr),
      beta1: Math.fround(c.beta1),
      beta2: Math.fround(c.beta2),
      eps: Math.fround(c.eps),
      weightDecay: Math.fround(c.weightDecay),
      maxGradNorm: Math.fround(c.maxGradNorm),
    };
    using opt = new AdamWState(backend, n);
    const ref: AdamWRefState = {
      p: Float64Array.from(rng.normals(n)),
      g: new Float64Array(n),
      m: new Float64Array(n),
      v: new Float64Array(n),
    };
    const buffer = new Float32Array(4 * n);
    buffer.set(ref.p);
    backend.write(opt.buffer, buffer);
    for (let step = 1; step <= 10; step++) {
      // Fresh gradients each step, written into section 1 of the flat state.
      const g = rng.normals(n, rng.uniform(0.01, 0.2));
      const state = opt.buffer.toHost();
      state.set(g, n);
      backend.write(opt.buffer, state);
      ref.g.set(g);
      const norm = opt.update({ ...c });
      const refNorm = adamwStepRef(ref, rounded, step);
      assertClose([norm], [refNorm], 1e-6, `${what}: norm at step ${step}`);
    }
    const got = opt.buffer.toHost();
    assert.equal(opt.step, 10);
    assertClose(got.subarray(0, n), ref.p, 1e-5, `${what}: params`);
    assertClose(got.subarray(n, 2 * n), ref.g, 1e-5, `${what}: stored (clipped) gradients`);
    assertClose(got.subarray(2 * n, 3 * n), ref.m, 1e-5, `${what}: first moments`);
    assertClose(got.subarray(3 * n, 4 * n), ref.v, 1e-5, `${what}: second moments`);
  }
});

Deno.test("adamw: clipping scales the stored gradients in place, only above max_norm", async () => {
  using backend = await openBackend("cpu");
  for (
    const { maxGradNorm, grads } of [
      { maxGradNorm: 1, grads: [3 / (5 + 1e-6), 4 / (5 + 1e-6)] },
      { maxGradNorm: 10, grads: [3, 4] },
      { maxGradNorm: 0, grads: [3, 4] },
    ]
  ) {
    using opt = new AdamWState(backend, 2);
    backend.write(opt.buffer, new Float32Array([1, 1, 3, 4, 0, 0, 0, 0]));
    assert.equal(opt.update({ lr: 0.1, maxGradNorm }), 5);
    assertClose(opt.buffer.toHost().subarray(2, 4), grads, 1e-7, `max_norm ${maxGradNorm}`);
  }
});

Deno.test("adamw: bad arguments fail with a message that says what is wrong", async () => {
  using backend = await openBackend("cpu");
  using state = backend.filled([4, 3], "f32");
  const s = backend.lib.symbols;
  const cases: [string, () => number, RegExp][] = [
    ["step 0", () => s.lorac_adamw_step(backend.ctx, state.ptr, 3n, 0.1, 0.9, 0.999, 1e-8, 0, 0, null, 0), /1-based/],
    [
      "clipping without a norm",
      () => s.lorac_adamw_step(backend.ctx, state.ptr, 3n, 0.1, 0.9, 0.999, 1e-8, 0, 1, null, 1),
      /max_norm > 0 needs the gradient norm/,
    ],
    [
      "beta2 = 1",
      () => s.lorac_adamw_step(backend.ctx, state.ptr, 3n, 0.1, 0.9, 1, 1e-8, 0, 1, null, 0),
      /betas must be in \[0, 1\), got 0.9 and 1/,
    ],
    ["a negative n", () => s.lorac_global_norm(backend.ctx, state.ptr, -1n, state.ptr), /n = -1 is negative/],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(
      () => backend.check(call()),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
      what,
    );
  }
});
