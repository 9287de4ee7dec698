import assert from "node:assert/strict";
import { attentionBackward, attentionForward, type AttentionHeads } from "../lib/backend/attention.ts";
import { type Backend, KernelError, openBackend } from "../lib/backend/backend.ts";
import { PackedBatch } from "../lib/backend/packed.ts";
import { attentionBackwardRef, type AttentionDims, attentionForwardRef } from "./reference/attention.ts";
import { assertClose, poison } from "./reference/compare.ts";
import { assertDirectionalDerivative, dot, numericGradient } from "./reference/finite_diff.ts";
import { download, poisoned, upload, withIsa } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";

interface Case {
  lengths: number[];
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  dtype: "f32" | "bf16";
}

// Lengths cross the 64-row blocks (65, 130), include one-token and empty sequences.
const cases: Case[] = [
  { lengths: [5, 70, 1, 130], nHeads: 4, nKvHeads: 2, headDim: 16, dtype: "f32" },
  { lengths: [33], nHeads: 3, nKvHeads: 1, headDim: 8, dtype: "f32" },
  { lengths: [64, 0, 65, 2], nHeads: 2, nKvHeads: 2, headDim: 128, dtype: "f32" },
  { lengths: [17, 90], nHeads: 6, nKvHeads: 3, headDim: 40, dtype: "bf16" },
];

/** Runs forward and backward on the kernel; returns host copies of everything. */
function runKernel(
  backend: Backend,
  c: Case,
  inputs: { q: Float32Array; k: Float32Array; v: Float32Array; dout: Float32Array },
) {
  using batch = PackedBatch.fromLengths(backend, c.lengths);
  const heads: AttentionHeads = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
  const q = upload(backend, inputs.q, c.dtype), k = upload(backend, inputs.k, c.dtype);
  const v = upload(backend, inputs.v, c.dtype), dout = upload(backend, inputs.dout, c.dtype);
  using out = poisoned(backend, inputs.q.length, c.dtype);
  using lse = backend.fromHost(poison(c.nHeads * batch.T), [c.nHeads * batch.T], "f32");
  using dq = poisoned(backend, inputs.q.length, c.dtype);
  using dk = poisoned(backend, inputs.k.length, c.dtype);
  using dv = poisoned(backend, inputs.v.length, c.dtype);
  attentionForward(backend, batch, heads, q.t, k.t, v.t, out, lse);
  attentionBackward(backend, batch, heads, q.t, k.t, v.t, out, lse, { dout: dout.t, dq, dk, dv });
  const result = {
    q: q.host,
    k: k.host,
    v: v.host,
    dout: dout.host,
    out: download(out),
    lse: lse.toHost(),
    dq: download(dq),
    dk: download(dk),
    dv: download(dv),
  };
  for (const t of [q.t, k.t, v.t, dout.t]) t.free();
  return result;
}

function randomInputs(rng: Rng, c: Case) {
  const T = c.lengths.reduce((a, b) => a + b, 0);
  return {
    q: rng.normals(T * c.nHeads * c.headDim),
    k: rng.normals(T * c.nKvHeads * c.headDim),
    v: rng.normals(T * c.nKvHeads * c.headDim),
    dout: rng.normals(T * c.nHeads * c.headDim),
  };
}

function dimsOf(c: Case): AttentionDims {
  let at = 0;
  const cu = Int32Array.from([0, ...c.lengths.map((l) => (at += l))]);
  return { cuSeqlens: cu, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, scale: 1 / Math.sqrt(c.headDim) };
}

Deno.test("attention: forward and backward match the float64 reference on packed sequences", async () => {
  // 1 thread keeps each kv head's query heads in one backward task; 16 threads split them
  // (partial dk / dv per query head, summed after).
  using one = await openBackend("cpu", { numThreads: 1 });
  using many = await openBackend("cpu", { numThreads: 16 });
  const rng = new Rng();
  const runs = cases.flatMap((c) => [[c, "", one], [c, "portable", one], [c, "", many]] as const);
  for (const [c, isa, backend] of runs) {
    const got = withIsa(isa, () => runKernel(backend, c, randomInputs(rng, c)));
    const dims = dimsOf(c);
    const want = attentionForwardRef(got.q, got.k, got.v, dims);
    const grads = attentionBackwardRef(got.q, got.k, got.v, got.dout, dims);
    const tol = c.dtype === "f32" ? 2e-5 : 1e-2;
    const threads = backend === one ? 1 : 16;
    const what = `${JSON.stringify(c)} ${isa || "best ISA"} ${threads} threads seed ${rng.seed}`;
    assertClose(got.out, want.out, tol, `out ${what}`);
    assertClose(got.lse, want.lse, 2e-5, `lse ${what}`);
    assertClose(got.dq, grads.dq, tol, `dq ${what}`);
    assertClose(got.dk, grads.dk, tol, `dk ${what}`);
    assertClose(got.dv, grads.dv, tol, `dv ${what}`);
  }
});

Deno.test("attention: changing one sequence moves no output or gradient of the others", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const c: Case = { lengths: [40, 75, 9], nHeads: 4, nKvHeads: 1, headDim: 16, dtype: "f32" };
  const inputs = randomInputs(rng, c);
  const before = runKernel(backend, c, inputs);
  // Tokens 40..114 are sequence 1: rewrite all its inputs.
  const rowsQ = c.nHeads * c.headDim, rowsKv = c.nKvHeads * c.headDim;
  for (const [name, width] of [["q", rowsQ], ["k", rowsKv], ["v", rowsKv], ["dout", rowsQ]] as const) {
    for (let i = 40 * width; i < 115 * width; i++) inputs[name][i] = rng.normal();
  }
  const after = runKernel(backend, c, inputs);
  const outside = (a: Float32Array, width: number) => [...a.subarray(0, 40 * width), ...a.subarray(115 * width)];
  for (const [name, width] of [["out", rowsQ], ["dq", rowsQ], ["dk", rowsKv], ["dv", rowsKv]] as const) {
    assert.deepEqual(outside(after[name], width), outside(before[name], width), `${name} moved, seed ${rng.seed}`);
    assert.notDeepEqual(after[name].subarray(40 * width, 115 * width), before[name].subarray(40 * width, 115 * width));
  }
  for (let h = 0; h < c.nHeads; h++) {
    const T = 124, lse = (a: Float32Array) => [...a.subarray(h * T, h * T + 40), ...a.subarray(h * T + 115, h * T + T)];
    assert.deepEqual(lse(after.lse), lse(before.lse), `lse moved, seed ${rng.seed}`);
  }
});

Deno.test("attention: the reference backward equals finite differences of the reference forward", () => {
  const rng = new Rng();
  const c: Case = { lengths: [3, 1, 4], nHeads: 4, nKvHeads: 2, headDim: 8, dtype: "f32" };
  const dims = dimsOf(c);
  const x = randomInputs(rng, c);
  const grads = attentionBackwardRef(x.q, x.k, x.v, x.dout, dims);
  const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
    dot(attentionForwardRef(q, k, v, dims).out, x.dout);
  const what = `seed ${rng.seed}`;
  assertClose(grads.dq, numericGradient((q) => loss(q, x.k, x.v), x.q), 1e-7, `dq ${what}`);
  assertClose(grads.dk, numericGradient((k) => loss(x.q, k, x.v), x.k), 1e-7, `dk ${what}`);
  assertClose(grads.dv, numericGradient((v) => loss(x.q, x.k, v), x.v), 1e-7, `dv ${what}`);
});

Deno.test("attention: the kernel's backward equals a finite difference of the kernel's forward", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const c: Case = { lengths: [20, 67], nHeads: 2, nKvHeads: 1, headDim: 16, dtype: "f32" };
  const x = randomInputs(rng, c);
  const g = runKernel(backend, c, x);
  // Along random directions u of (q, k, v): (L(x + eps u) - L(x - eps u)) / 2 eps = <grad, u>, to 2e-5 |grad| |u|
  // (the worst of 44 seeds: 5.1e-6); three directions leave a wrong gradient nowhere to hide.
  const eps = 1e-2;
  for (let direction = 0; direction < 3; direction++) {
    const u = randomInputs(rng, c);
    const lossAt = (sign: number) => {
      const shifted = {
        q: x.q.map((a, i) => a + sign * eps * u.q[i]),
        k: x.k.map((a, i) => a + sign * eps * u.k[i]),
        v: x.v.map((a, i) => a + sign * eps * u.v[i]),
        dout: x.dout,
      };
      return dot(runKernel(backend, c, shifted).out, x.dout);
    };
    const numeric = (lossAt(1) - lossAt(-1)) / (2 * eps);
    assertDirectionalDerivative(numeric, [g.dq, g.dk, g.dv], [u.q, u.k, u.v], 2e-5, `seed ${rng.seed}`);
  }
});

Deno.test("attention: inference without lse gives the same output", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  using batch = PackedBatch.fromLengths(backend, [7, 66]);
  const heads = { nHeads: 2, nKvHeads: 1, headDim: 8 };
  using q = backend.fromHost(rng.normals(73 * 16), [73, 16], "f32");
  using kv = backend.fromHost(rng.normals(73 * 8), [73, 8], "f32");
  using a = backend.empty([73, 16], "f32");
  using b = backend.empty([73, 16], "f32");
  using lse = backend.empty([2, 73], "f32");
  attentionForward(backend, batch, heads, q, kv, kv, a, lse);
  attentionForward(backend, batch, heads, q, kv, kv, b, null);
  assert.deepEqual(b.toHost(), a.toHost());
});

Deno.test("attention: bad layouts fail with a message that names the problem", async () => {
  using backend = await openBackend("cpu");
  using batch = PackedBatch.fromLengths(backend, [4]);
  const cases: [AttentionHeads, RegExp][] = [
    [{ nHeads: 3, nKvHeads: 2, headDim: 8 }, /n_heads \(3\) must be a positive multiple of n_kv_heads \(2\)/],
    [{ nHeads: 2, nKvHeads: 1, headDim: 6 }, /head_dim must be even and in 8..128, got 6/],
    [{ nHeads: 1, nKvHeads: 1, headDim: 130 }, /head_dim must be even and in 8..128, got 130/],
  ];
  for (const [heads, message] of cases) {
    using q = backend.filled([4 * heads.nHeads * heads.headDim], "f32");
    using kv = backend.filled([4 * heads.nKvHeads * heads.headDim], "f32");
    using out = backend.empty([q.numel], "f32");
    assert.throws(
      () => attentionForward(backend, batch, heads, q, kv, kv, out, null),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
    );
  }
  using x = backend.filled([4, 16], "f32");
  using out = backend.empty([4, 16], "f32");
  const heads = { nHeads: 2, nKvHeads: 2, headDim: 8 };
  using small = backend.filled([4, 8], "f32");
  assert.throws(() => attentionForward(backend, batch, heads, x, small, x, out, null), /k must hold 64 elements/);
  backend.write(batch.cuSeqlens, new Int32Array([0, 3])); // offsets that do not end at T
  assert.throws(
    () => attentionForward(backend, batch, heads, x, x, x, out, null),
    (e: unknown) => e instanceof KernelError && /cu_seqlens\[1\] = 3 but T = 4/.test(e.message),
  );
});
