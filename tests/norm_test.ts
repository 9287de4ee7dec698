import assert from "node:assert/strict";
import { KernelError, openBackend } from "../lib/backend/backend.ts";
import { rmsnormBackward, rmsnormForward } from "../lib/backend/norm.ts";
import { assertClose, poison } from "./reference/compare.ts";
import { assertDirectionalDerivative, dot, numericGradient } from "./reference/finite_diff.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { rmsnormBackwardRef, rmsnormRef } from "./reference/norm.ts";
import { Rng } from "./reference/random.ts";

type Dt = "f32" | "bf16";
interface Case {
  rows: number;
  dim: number;
  x: Dt;
  w: Dt;
  y: Dt;
}

const cases: Case[] = [
  { rows: 1, dim: 3, x: "f32", w: "f32", y: "f32" },
  { rows: 7, dim: 576, x: "f32", w: "bf16", y: "f32" },
  { rows: 33, dim: 1001, x: "f32", w: "f32", y: "bf16" },
  { rows: 5, dim: 2048, x: "bf16", w: "bf16", y: "bf16" },
];
const eps = 1e-5;
const tolOf = (c: Case) => c.y === "bf16" ? 1e-2 : 1e-5;

Deno.test("rmsnorm: forward matches the float64 reference, rstd included", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const c of cases) {
    const x = upload(backend, rng.normals(c.rows * c.dim, 3), c.x);
    const w = upload(backend, rng.normals(c.dim), c.w);
    using y = poisoned(backend, c.rows * c.dim, c.y);
    using rstd = backend.fromHost(poison(c.rows), [c.rows], "f32");
    rmsnormForward(backend, x.t, w.t, y, rstd, eps);
    const want = rmsnormRef(x.host, w.host, c.dim, eps);
    const what = `${JSON.stringify(c)} seed ${rng.seed}`;
    assertClose(download(y), want.y, tolOf(c), `y ${what}`);
    assertClose(rstd.toHost(), want.rstd, 1e-5, `rstd ${what}`);
    x.t.free();
    w.t.free();
  }
});

Deno.test("rmsnorm: backward matches the reference, overwriting or accumulating", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const c of cases) {
    for (const accumulate of [false, true]) {
      const x = upload(backend, rng.normals(c.rows * c.dim, 3), c.x);
      const w = upload(backend, rng.normals(c.dim), c.w);
      const dy = upload(backend, rng.normals(c.rows * c.dim), c.y);
      using y = backend.empty([c.rows * c.dim], c.y);
      using rstd = backend.empty([c.rows], "f32");
      rmsnormForward(backend, x.t, w.t, y, rstd, eps);
      const n = c.rows * c.dim;
      const start = accumulate ? upload(backend, rng.normals(n), c.x) : { host: null, t: poisoned(backend, n, c.x) };
      rmsnormBackward(backend, x.t, w.t, rstd, dy.t, start.t, accumulate);
      const want = rmsnormBackwardRef(x.host, w.host, dy.host, c.dim, eps);
      if (start.host) want.forEach((v, i) => (want[i] = v + start.host[i]));
      const tol = c.x === "bf16" || c.y === "bf16" ? 1e-2 : 1e-5;
      assertClose(download(start.t), want, tol, `dx ${JSON.stringify(c)} accumulate ${accumulate} seed ${rng.seed}`);
      for (const t of [x.t, w.t, dy.t, start.t]) t.free();
    }
  }
});

Deno.test("rmsnorm: the reference backward equals finite differences of the reference forward", () => {
  const rng = new Rng();
  const dim = 9, rows = 3;
  const x = rng.normals(rows * dim), w = rng.normals(dim), g = rng.normals(rows * dim);
  const numeric = numericGradient((xs) => dot(rmsnormRef(xs, w, dim, eps).y, g), x);
  assertClose(rmsnormBackwardRef(x, w, g, dim, eps), numeric, 1e-7, `seed ${rng.seed}`);
});

Deno.test("rmsnorm: the kernel's backward equals a finite difference of the kernel's forward", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const rows = 4, dim = 300;
  const x = rng.normals(rows * dim), g = rng.normals(rows * dim);
  using w = backend.fromHost(rng.normals(dim), [dim], "f32");
  using y = backend.empty([rows, dim], "f32");
  const loss = (values: Float32Array) => {
    using xt = backend.fromHost(values, [rows, dim], "f32");
    rmsnormForward(backend, xt, w, y, null, eps);
    return dot(y.toHost(), g);
  };
  using xt = backend.fromHost(x, [rows, dim], "f32");
  using rstd = backend.empty([rows], "f32");
  rmsnormForward(backend, xt, w, y, rstd, eps);
  using dy = backend.fromHost(g, [rows, dim], "f32");
  using dx = backend.empty([rows, dim], "f32");
  rmsnormBackward(backend, xt, w, rstd, dy, dx);
  const grad = dx.toHost();
  // Along random directions u: the central difference equals <dx, u> to 2e-5 |dx| |u| (the worst of 40 runs: 4e-6);
  // three directions leave a wrong gradient nowhere to hide.
  const h = 1e-2;
  for (let direction = 0; direction < 3; direction++) {
    const u = rng.normals(rows * dim);
    const numeric = (loss(x.map((v, i) => v + h * u[i])) - loss(x.map((v, i) => v - h * u[i]))) / (2 * h);
    assertDirectionalDerivative(numeric, [grad], [u], 2e-5, `seed ${rng.seed}`);
  }
});

Deno.test("rmsnorm: a bad dtype or shape fails with a message that names it", async () => {
  using backend = await openBackend("cpu");
  using x = backend.filled([2, 6], "f32");
  using w = backend.filled([5], "f32");
  using y = backend.empty([2, 6], "f32");
  assert.throws(() => rmsnormForward(backend, x, w, y, null, eps), /does not split into rows of the weight's 5/);
  using w6 = backend.filled([6], "f32");
  using ids = backend.filled([2, 6], "i32");
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => rmsnormForward(backend, ids as any, w6, y, null, eps),
    (e: unknown) => e instanceof KernelError && /dtypes must be F32 or BF16/.test(e.message),
  );
});
