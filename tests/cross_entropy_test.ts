import assert from "node:assert/strict";
import { KernelError, openBackend } from "../lib/backend/backend.ts";
import { linearCrossEntropy, linearLogits, tokenLogprobs } from "../lib/backend/cross_entropy.ts";
import { assertClose, poison } from "./reference/compare.ts";
import { crossEntropyRef, logitsRef } from "./reference/cross_entropy.ts";
import { assertDirectionalDerivative, numericGradient } from "./reference/finite_diff.ts";
import { download, upload, withIsa } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";

type Dt = "f32" | "bf16";
interface Case {
  T: number;
  D: number;
  V: number;
  rows: number;
  h: Dt;
  w: Dt;
  dh: Dt;
}

// V spans one or many 64-column chunks (and a ragged last one); rows are distinct.
const cases: Case[] = [
  { T: 1, D: 1, V: 1, rows: 1, h: "f32", w: "f32", dh: "f32" },
  { T: 9, D: 17, V: 131, rows: 3, h: "f32", w: "f32", dh: "f32" },
  { T: 40, D: 64, V: 1000, rows: 13, h: "f32", w: "bf16", dh: "f32" },
  { T: 7, D: 33, V: 257, rows: 7, h: "bf16", w: "bf16", dh: "bf16" },
  { T: 5, D: 8, V: 10, rows: 0, h: "f32", w: "f32", dh: "f32" },
];

function distinctRows(rng: Rng, T: number, n: number): Int32Array {
  const all = Array.from({ length: T }, (_, i) => i);
  for (let i = T - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return Int32Array.from(all.slice(0, n));
}

Deno.test("linear cross-entropy: losses and dH rows match the float64 reference; other rows stay", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const [c, isa, accumulate] of cases.flatMap((c) => [[c, "", false], [c, "portable", true]] as const)) {
    const h = upload(backend, rng.normals(c.T * c.D), c.h, [c.T, c.D]);
    const w = upload(backend, rng.normals(c.V * c.D, 0.5), c.w, [c.V, c.D]);
    const rowsHost = distinctRows(rng, c.T, c.rows);
    const targetsHost = Int32Array.from(rowsHost, () => rng.int(0, c.V - 1));
    // An empty selection uploads nothing (a zero-byte copy has no host pointer).
    const ints = (a: Int32Array) => a.length ? backend.fromHost(a, [a.length], "i32") : backend.empty([0], "i32");
    using rows = ints(rowsHost);
    using targets = ints(targetsHost);
    using lossSum = backend.fromHost(poison(1), [1], "f32");
    using rowLoss = backend.fromHost(poison(Math.max(1, c.rows)), [Math.max(1, c.rows)], "f32");
    const dH = upload(backend, rng.normals(c.T * c.D), c.dh, [c.T, c.D]);
    const gradScale = 1 / Math.max(1, c.rows);
    withIsa(isa, () =>
      linearCrossEntropy(backend, h.t, w.t, rows, targets, {
        lossSum,
        rowLoss: c.rows ? rowLoss : undefined,
        dH: dH.t,
        gradScale,
        accumulate,
      }));
    const want = crossEntropyRef(h.host, w.host, rowsHost, targetsHost, c.D);
    const wantDH = Float64Array.from(dH.host);
    rowsHost.forEach((r, k) => {
      for (let i = 0; i < c.D; i++) {
        const g = gradScale * want.dRows[k * c.D + i];
        wantDH[r * c.D + i] = accumulate ? wantDH[r * c.D + i] + g : g;
      }
    });
    const what = `${JSON.stringify(c)} ${isa || "best ISA"} accumulate ${accumulate} seed ${rng.seed}`;
    if (c.rows) assertClose(rowLoss.toHost(), want.rowLoss, 1e-5, `row loss ${what}`);
    assertClose(lossSum.toHost(), [want.rowLoss.reduce((a, b) => a + b, 0)], 1e-5, `loss sum ${what}`);
    assertClose(download(dH.t), wantDH, c.dh === "bf16" ? 1e-2 : 1e-5, `dH ${what}`);
    for (const t of [h.t, w.t, dH.t]) t.free();
  }
});

Deno.test("linear cross-entropy: the reference gradient equals finite differences of the reference loss", () => {
  const rng = new Rng();
  const T = 4, D = 5, V = 11, rows = [3, 0], targets = [7, 2];
  const h = rng.normals(T * D), w = rng.normals(V * D);
  const { dRows } = crossEntropyRef(h, w, rows, targets, D);
  const numeric = numericGradient((x) => crossEntropyRef(x, w, rows, targets, D).rowLoss.reduce((a, b) => a + b), h);
  const want = new Float64Array(T * D);
  rows.forEach((r, k) => want.set(dRows.subarray(k * D, (k + 1) * D), r * D));
  assertClose(want, numeric, 1e-7, `seed ${rng.seed}`);
});

Deno.test("linear cross-entropy: the kernel's dH equals a finite difference of the kernel's loss", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const T = 6, D = 40, V = 300;
  const hHost = rng.normals(T * D);
  using w = backend.fromHost(rng.normals(V * D, 0.3), [V, D], "f32");
  using rows = backend.fromHost(new Int32Array([5, 1, 2]), [3], "i32");
  using targets = backend.fromHost(new Int32Array([0, 299, 150]), [3], "i32");
  using lossSum = backend.empty([1], "f32");
  using h = backend.fromHost(hHost, [T, D], "f32");
  using dH = backend.filled([T, D], "f32");
  linearCrossEntropy(backend, h, w, rows, targets, { lossSum, dH });
  const grad = dH.toHost();
  // Along random directions u: (L(h + eps u) - L(h - eps u)) / 2 eps = <dH, u>, to 3e-5 |dH| |u| (the worst of 123
  // directions: 5.7e-6); three directions leave a wrong gradient nowhere to hide.
  const eps = 1e-2;
  for (let direction = 0; direction < 3; direction++) {
    const u = rng.normals(T * D);
    const loss = (s: number) => {
      using shifted = backend.fromHost(hHost.map((v, i) => v + s * u[i]), [T, D], "f32");
      linearCrossEntropy(backend, shifted, w, rows, targets, { lossSum });
      return lossSum.toHost()[0];
    };
    const numeric = (loss(eps) - loss(-eps)) / (2 * eps);
    assertDirectionalDerivative(numeric, [grad], [u], 3e-5, `seed ${rng.seed}`);
  }
});

Deno.test("linear logits and token log-probabilities match the reference; rows may repeat", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const wDtype of ["f32", "bf16"] as const) {
    const T = 5, D = 70, V = 333;
    const h = upload(backend, rng.normals(T * D), "f32", [T, D]);
    const w = upload(backend, rng.normals(V * D, 0.2), wDtype, [V, D]);
    const rowsHost = new Int32Array([4, 0, 4, 2]), tokensHost = new Int32Array([1, 332, 17, 0]);
    using rows = backend.fromHost(rowsHost, [4], "i32");
    using tokens = backend.fromHost(tokensHost, [4], "i32");
    using logits = backend.fromHost(poison(4 * V), [4, V], "f32");
    linearLogits(backend, h.t, w.t, rows, logits);
    const z = logitsRef(h.host, w.host, rowsHost, D);
    assertClose(logits.toHost(), z, 1e-5, `logits W ${wDtype} seed ${rng.seed}`);
    using logprobs = backend.fromHost(poison(4), [4], "f32");
    tokenLogprobs(backend, h.t, w.t, rows, tokens, logprobs);
    const want = crossEntropyRef(h.host, w.host, rowsHost, tokensHost, D).rowLoss.map((l) => -l);
    assertClose(logprobs.toHost(), want, 1e-5, `log-probabilities W ${wDtype} seed ${rng.seed}`);
    h.t.free();
    w.t.free();
  }
});

Deno.test("linear cross-entropy: bad rows or targets fail with a message that names them", async () => {
  using backend = await openBackend("cpu");
  using h = backend.filled([4, 8], "f32");
  using w = backend.filled([10, 8], "f32");
  using lossSum = backend.empty([1], "f32");
  using dH = backend.filled([4, 8], "f32");
  const cases: [number[], number[], boolean, RegExp][] = [
    [[1, 1], [0, 0], true, /row 1 is selected twice; rows must be distinct when dH is given/],
    [[4], [0], false, /rows\[0\] = 4 is outside H's 4 rows/],
    [[0], [10], false, /targets\[0\] = 10 is outside the vocabulary \[0, 10\)/],
  ];
  for (const [r, t, grad, message] of cases) {
    using rows = backend.fromHost(Int32Array.from(r), [r.length], "i32");
    using targets = backend.fromHost(Int32Array.from(t), [t.length], "i32");
    assert.throws(
      () => linearCrossEntropy(backend, h, w, rows, targets, grad ? { lossSum, dH } : { lossSum }),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
    );
  }
});
