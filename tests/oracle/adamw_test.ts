// Our AdamW (one flat buffer, global-norm clipping) against torch.optim.AdamW(foreach=False)
// with torch.nn.utils.clip_grad_norm_ over several parameter tensors: the parameters and
// moments after every step of a 12-step trajectory, and the gradient norm of every step.
//
// The C ABI passes the hyperparameters as f32 while torch keeps them as Python floats, so
// torch's (1 - beta2) is the double 1 - 0.999 and ours is 1 - f32(0.999): the second moment
// differs by that rounding (1.3e-5 relative for 0.999), which the bias correction cancels in
// the update. Its tolerance allows exactly that; "clip_1" uses betas exact in f32, where v must
// match to 1e-6 like everything else.
import { openBackend } from "../../lib/backend/backend.ts";
import { AdamWState } from "../../lib/backend/adamw.ts";
import { assertClose } from "../reference/compare.ts";
import { Rng } from "../reference/random.ts";
import { runOracle, tensor } from "./harness.ts";

interface AdamWCase {
  name: string;
  /** Sizes of the parameter tensors laid end to end in the flat buffer. */
  sizes: number[];
  /** The learning rate of each step (a warmup-then-decay schedule). */
  lrs: number[];
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  /** 0: no clipping. */
  max_grad_norm: number;
}

const STEPS = 12;
const rng = new Rng();

function schedule(peak: number): number[] {
  return Array.from({ length: STEPS }, (_, s) => s < 3 ? peak * (s + 1) / 3 : peak * (STEPS - s) / (STEPS - 3));
}

const cases: AdamWCase[] = [
  {
    name: "no_clipping",
    sizes: [96, 7, 310],
    lrs: schedule(3e-3),
    beta1: 0.8,
    beta2: 0.95,
    eps: 1e-6,
    weight_decay: 0.1,
    max_grad_norm: 0,
  },
  {
    name: "clip_1",
    sizes: [37, 200, 1, 64],
    lrs: schedule(1e-2),
    beta1: 0.875,
    beta2: 1 - 2 ** -10,
    eps: 1e-7,
    weight_decay: 0.05,
    max_grad_norm: 1,
  },
  {
    name: "clip_never_hit",
    sizes: [513, 5],
    lrs: schedule(2e-4),
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weight_decay: 0,
    max_grad_norm: 1e4,
  },
];

/** 1e-6 plus twice the relative gap between torch's (1 - beta2) and ours, 1 - f32(beta2). */
function secondMomentTolerance(beta2: number): number {
  return 1e-6 + 2 * Math.abs((1 - Math.fround(beta2)) - (1 - beta2)) / (1 - beta2);
}

/** Gradients whose norm swings across the clipping threshold from step to step. */
function gradients(n: number): Float32Array {
  const grads = new Float32Array(STEPS * n);
  for (let s = 0; s < STEPS; s++) grads.set(rng.normals(n, 0.2 * 4 ** ((s % 4) - 2)), s * n);
  return grads;
}

Deno.test("oracle adamw: a clipped 12-step trajectory equals torch.optim.AdamW's within 1e-6", async () => {
  const inputs = Object.fromEntries(cases.flatMap((c) => {
    const n = c.sizes.reduce((a, b) => a + b, 0);
    return [
      [`${c.name}.params0`, tensor("f32", [n], rng.normals(n))],
      [`${c.name}.grads`, tensor("f32", [STEPS, n], gradients(n))],
    ];
  }));
  const out = await runOracle("adamw_oracle.py", { cases }, inputs);
  using backend = await openBackend("cpu");
  for (const c of cases) {
    const n = c.sizes.reduce((a, b) => a + b, 0);
    const grads = inputs[`${c.name}.grads`].data as Float32Array;
    const wantParams = out.get(`${c.name}.params`, "f32");
    const wantM = out.get(`${c.name}.m`, "f32");
    const wantV = out.get(`${c.name}.v`, "f32");
    const wantNorms = out.get(`${c.name}.norms`, "f32");
    using opt = new AdamWState(backend, n);
    const host = new Float32Array(4 * n);
    host.set(inputs[`${c.name}.params0`].data as Float32Array);
    backend.write(opt.buffer, host);
    for (let s = 0; s < STEPS; s++) {
      const what = `${c.name} step ${s + 1} (seed ${rng.seed})`;
      const state = opt.buffer.toHost();
      state.set(grads.subarray(s * n, (s + 1) * n), n);
      backend.write(opt.buffer, state);
      const norm = opt.update({
        lr: c.lrs[s],
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weightDecay: c.weight_decay,
        maxGradNorm: c.max_grad_norm,
      });
      assertClose([norm], [wantNorms[s]], 1e-6, `${what}: gradient norm`);
      const after = opt.buffer.toHost();
      const at = (section: number) => after.subarray(section * n, (section + 1) * n);
      const want = (all: Float32Array) => all.subarray(s * n, (s + 1) * n);
      assertClose(at(0), want(wantParams), 1e-6, `${what}: params`);
      assertClose(at(2), want(wantM), 1e-6, `${what}: first moment`);
      assertClose(at(3), want(wantV), secondMomentTolerance(c.beta2), `${what}: second moment`);
    }
  }
});
