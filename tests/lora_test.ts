import assert from "node:assert/strict";
import { type Backend, KernelError, openBackend } from "../lib/backend/backend.ts";
import { dtypeCode, fromBf16, toBf16 } from "../lib/backend/dtype.ts";
import type { FloatTensor } from "../lib/backend/gemm.ts";
import { type LoraAdapter, loraBackward, loraForward } from "../lib/backend/lora.ts";
import type { Tensor } from "../lib/backend/tensor.ts";
import { assertClose, poison } from "./reference/compare.ts";
import { dropoutFactors, loraBackwardRef, loraForwardRef, type LoraShape } from "./reference/lora.ts";
import { Rng } from "./reference/random.ts";

type Float = "f32" | "bf16";

/** The values a dtype can hold: bf16 rounds. */
function exact(values: Float32Array, dtype: Float): Float32Array {
  return dtype === "f32" ? values : fromBf16(toBf16(values));
}

// Empty tensors skip the copy: a zero-length host array reaches the library as NULL.
function upload(backend: Backend, values: Float32Array, shape: number[], dtype: Float): FloatTensor {
  if (values.length === 0) return backend.empty(shape, dtype);
  return dtype === "f32" ? backend.fromHost(values, shape, "f32") : backend.fromHost(toBf16(values), shape, "bf16");
}

function uploadF32(backend: Backend, values: Float32Array, shape: number[]): Tensor<"f32"> {
  return values.length === 0 ? backend.empty(shape, "f32") : backend.fromHost(values, shape, "f32");
}

function download(t: FloatTensor): Float32Array {
  if (t.numel === 0) return new Float32Array(0);
  const host = t.toHost();
  return host instanceof Float32Array ? host : fromBf16(host as Uint16Array);
}

function add(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

/** Tolerance of an output of `dtype`: fp32 sums of exact inputs, or one bf16 rounding. */
const tol = (dtype: Float) => (dtype === "f32" ? 1e-5 : 1e-2);

interface Case {
  M: number;
  N: number;
  K: number;
  r: number;
  p: number;
  x: Float;
  y: Float;
}

// Odd sizes: row tiles of 4, task columns of 64 and blocks of 256 columns never divide them evenly.
const cases: Case[] = [
  { M: 7, N: 300, K: 270, r: 5, p: 0.2, x: "f32", y: "f32" },
  { M: 37, N: 53, K: 61, r: 8, p: 0, x: "f32", y: "f32" },
  { M: 5, N: 130, K: 77, r: 16, p: 0.1, x: "f32", y: "f32" },
  { M: 1, N: 7, K: 3, r: 1, p: 0, x: "f32", y: "f32" },
  { M: 70, N: 33, K: 129, r: 64, p: 0.05, x: "bf16", y: "f32" },
  { M: 9, N: 67, K: 45, r: 12, p: 0.3, x: "bf16", y: "bf16" },
  { M: 0, N: 5, K: 6, r: 2, p: 0, x: "f32", y: "f32" },
];

function randomProblem(rng: Rng, c: Case) {
  const s: LoraShape = {
    M: c.M,
    N: c.N,
    K: c.K,
    r: c.r,
    scale: rng.uniform(0.5, 4),
    p: c.p,
    seed: BigInt(rng.int(0, 2 ** 31)),
  };
  return {
    s,
    X: exact(rng.normals(c.M * c.K), c.x),
    A: rng.normals(c.r * c.K, 1 / Math.sqrt(c.K)),
    B: rng.normals(c.N * c.r, 0.1),
  };
}

function adapter(backend: Backend, s: LoraShape, A: Float32Array, B: Float32Array): LoraAdapter {
  return {
    A: backend.fromHost(A, [s.r, s.K], "f32"),
    B: backend.fromHost(B, [s.N, s.r], "f32"),
    scale: s.scale,
    dropout: s.p,
    seed: s.seed,
  };
}

Deno.test("lora: forward matches the float64 reference (Y accumulates, XA is written)", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const c of cases) {
    const { s, X, A, B } = randomProblem(rng, c);
    const what = `${JSON.stringify(c)} (seed ${rng.seed})`;
    const y0 = exact(rng.normals(c.M * c.N), c.y);
    const lora = adapter(backend, s, A, B);
    using _A = lora.A;
    using _B = lora.B;
    using x = upload(backend, X, [c.M, c.K], c.x);
    using xa = uploadF32(backend, poison(c.M * c.r), [c.M, c.r]);
    using y = upload(backend, y0, [c.M, c.N], c.y);
    loraForward(backend, x, lora, xa, y);
    const want = loraForwardRef(s, X, A, B);
    assertClose(download(xa), want.xa, 1e-5, `XA ${what}`);
    assertClose(download(y), add(y0, want.delta), tol(c.y), `Y ${what}`);
  }
});

Deno.test("lora: backward matches the float64 reference (dA, dB, dX accumulate)", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const c of cases) {
    for (const withDx of [true, false]) {
      const { s, X, A, B } = randomProblem(rng, c);
      const what = `${JSON.stringify(c)} dX=${withDx} (seed ${rng.seed})`;
      const xaRef = loraForwardRef(s, X, A, B).xa;
      const dY = exact(rng.normals(c.M * c.N), c.y);
      const [dA0, dB0, dX0] = [rng.normals(c.r * c.K), rng.normals(c.N * c.r), exact(rng.normals(c.M * c.K), c.x)];
      const lora = adapter(backend, s, A, B);
      using _A = lora.A;
      using _B = lora.B;
      using x = upload(backend, X, [c.M, c.K], c.x);
      using xa = uploadF32(backend, Float32Array.from(xaRef), [c.M, c.r]);
      using dy = upload(backend, dY, [c.M, c.N], c.y);
      using dA = backend.fromHost(dA0, [c.r, c.K], "f32");
      using dB = backend.fromHost(dB0, [c.N, c.r], "f32");
      using dx = upload(backend, dX0, [c.M, c.K], c.x);
      loraBackward(backend, x, lora, xa, dy, withDx ? { dA, dB, dx } : { dA, dB });
      const want = loraBackwardRef(s, X, A, B, Float32Array.from(xaRef), dY);
      assertClose(dA.toHost(), add(dA0, want.dA), 1e-5, `dA ${what}`);
      assertClose(dB.toHost(), add(dB0, want.dB), 1e-5, `dB ${what}`);
      assertClose(download(dx), withDx ? add(dX0, want.dX) : dX0, withDx ? tol(c.x) : 0, `dX ${what}`);
    }
  }
});

Deno.test("lora: backward agrees with finite differences of the kernel's forward", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  // Y is linear in each of A, B and X (the mask is fixed by the seed), so a
  // central difference is exact up to fp32 rounding, even with dropout.
  for (const p of [0, 0.2]) {
    const c: Case = { M: 6, N: 9, K: 270, r: 3, p, x: "f32", y: "f32" }; // K spans two column blocks
    const { s, X, A, B } = randomProblem(rng, c);
    const what = `p=${p} (seed ${rng.seed})`;
    const dY = rng.normals(c.M * c.N);
    // loss = Σ dY ⊙ Y, Y from zero.
    const loss = (x: Float32Array, a: Float32Array, b: Float32Array): number => {
      const lora = adapter(backend, s, a, b);
      using _A = lora.A;
      using _B = lora.B;
      using xt = backend.fromHost(x, [c.M, c.K], "f32");
      using xa = backend.empty([c.M, c.r], "f32");
      using y = backend.filled([c.M, c.N], "f32");
      loraForward(backend, xt, lora, xa, y);
      return y.toHost().reduce((acc, v, i) => acc + v * dY[i], 0);
    };
    const lora = adapter(backend, s, A, B);
    using _A = lora.A;
    using _B = lora.B;
    using x = backend.fromHost(X, [c.M, c.K], "f32");
    using xa = backend.empty([c.M, c.r], "f32");
    using y = backend.filled([c.M, c.N], "f32");
    loraForward(backend, x, lora, xa, y);
    using dy = backend.fromHost(dY, [c.M, c.N], "f32");
    using dA = backend.filled([c.r, c.K], "f32");
    using dB = backend.filled([c.N, c.r], "f32");
    using dx = backend.filled([c.M, c.K], "f32");
    loraBackward(backend, x, lora, xa, dy, { dA, dB, dx });
    const grads = { X: dx.toHost(), A: dA.toHost(), B: dB.toHost() };
    const h = 0.5;
    for (const name of ["X", "A", "B"] as const) {
      // A few coordinates of each gradient: every forward call is a round trip.
      const picked = Array.from({ length: 6 }, () => rng.int(0, grads[name].length - 1));
      const numeric = picked.map((i) => {
        const bump = (d: number) => {
          const v = { X, A, B };
          const moved = Float32Array.from(v[name]);
          moved[i] += d;
          return loss(name === "X" ? moved : X, name === "A" ? moved : A, name === "B" ? moved : B);
        };
        return (bump(h) - bump(-h)) / (2 * h);
      });
      assertClose(picked.map((i) => grads[name][i]), numeric, 1e-4, `d${name} at ${picked} ${what}`);
    }
  }
});

Deno.test("lora: dropout drops about p of the elements, the same ones for the same seed", async () => {
  using backend = await openBackend("cpu");
  // With K = r = 1 and A = 1, XA[m] = drop(X[m]): the mask itself.
  const M = 20000;
  const mask = (p: number, seed: bigint): Float32Array => {
    using x = backend.fromHost(new Float32Array(M).fill(1), [M, 1], "f32");
    using A = backend.fromHost(new Float32Array([1]), [1, 1], "f32");
    using B = backend.fromHost(new Float32Array([0]), [1, 1], "f32");
    using xa = backend.fromHost(poison(M), [M, 1], "f32");
    using y = backend.filled([M, 1], "f32");
    loraForward(backend, x, { A, B, scale: 1, dropout: p, seed }, xa, y);
    return xa.toHost();
  };
  for (const p of [0.05, 0.1, 0.5]) {
    const got = mask(p, 1234n);
    const dropped = got.filter((v) => v === 0).length;
    const sigma = Math.sqrt(M * p * (1 - p));
    assert.ok(Math.abs(dropped - M * p) < 5 * sigma, `p=${p}: ${dropped} of ${M} dropped`);
    const keep = Math.fround(1 / (1 - Math.fround(p)));
    assert.ok(got.every((v) => v === 0 || v === keep), `p=${p}: kept elements are scaled by 1/(1-p)`);
    assert.deepEqual(got, mask(p, 1234n), `p=${p}: same seed, same mask`);
    assert.notDeepEqual(got, mask(p, 1235n), `p=${p}: another seed, another mask`);
    assert.deepEqual(got.map((v) => (v === 0 ? 0 : 1)), Float32Array.from(dropoutFactors(1234n, p, M), (v) => v && 1));
  }
  assert.deepEqual(mask(0, 1234n), new Float32Array(M).fill(1), "p=0 keeps everything unscaled");
});

Deno.test("lora: bad arguments fail with a message that says what is wrong", async () => {
  using backend = await openBackend("cpu");
  using x = backend.fromHost(new Float32Array(6), [2, 3], "f32");
  using A = backend.fromHost(new Float32Array(3), [1, 3], "f32");
  using B = backend.fromHost(new Float32Array(4), [4, 1], "f32");
  using xa = backend.empty([2, 1], "f32");
  using y = backend.empty([2, 4], "f32");
  const s = backend.lib.symbols;
  const forward = (p: number, xDtype: number, r: number) =>
    s.lorac_lora_forward(backend.ctx, 2, 4, 3, r, x.ptr, xDtype, A.ptr, B.ptr, 1, p, 0n, xa.ptr, y.ptr, 0);
  const cases: [string, () => number, RegExp][] = [
    ["dropout 1", () => forward(1, 0, 1), /dropout_p must be in \[0, 1\), got 1/],
    ["an nf4 X", () => forward(0, dtypeCode.nf4, 1), /X and Y must be F32 or BF16/],
    ["rank 0", () => forward(0, 0, 0), /N, K, r > 0 \(got M=2 N=4 K=3 r=0\)/],
    [
      "no dB",
      () =>
        s.lorac_lora_backward(
          backend.ctx,
          2,
          4,
          3,
          1,
          x.ptr,
          0,
          A.ptr,
          B.ptr,
          1,
          0,
          0n,
          xa.ptr,
          y.ptr,
          0,
          A.ptr,
          null,
          null,
          0,
        ),
      /X, A, B, XA, dY, dA or dB is NULL/,
    ],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(
      () => backend.check(call()),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
      what,
    );
  }
  assert.throws(
    () => loraForward(backend, x, { A, B, scale: 1, dropout: 1, seed: 0n }, xa, y),
    /dropout must be in \[0, 1\), got 1/,
  );
});
