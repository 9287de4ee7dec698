import { openBackend } from "../lib/backend/backend.ts";
import { swigluBackward, swigluForward } from "../lib/backend/swiglu.ts";
import { assertClose } from "./reference/compare.ts";
import { assertDirectionalDerivative, dot, numericGradient } from "./reference/finite_diff.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";
import { swigluBackwardRef, swigluRef } from "./reference/swiglu.ts";

const cases = [
  { n: 1, dtype: "f32" },
  { n: 1023, dtype: "f32" },
  { n: 3 * 1536 + 7, dtype: "bf16" },
] as const;

Deno.test("swiglu: forward and backward match the float64 reference, in place or not", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const { n, dtype } of cases) {
    for (const inPlace of [false, true]) {
      const gate = upload(backend, rng.normals(n, 4), dtype);
      const up = upload(backend, rng.normals(n), dtype);
      const dout = upload(backend, rng.normals(n), dtype);
      using out = poisoned(backend, n, dtype);
      swigluForward(backend, gate.t, up.t, out);
      const tol = dtype === "f32" ? 1e-6 : 1e-2;
      const what = `n ${n} ${dtype} in place ${inPlace} seed ${rng.seed}`;
      assertClose(download(out), swigluRef(gate.host, up.host), tol, `out ${what}`);
      using dgateOwn = poisoned(backend, n, dtype);
      using dupOwn = poisoned(backend, n, dtype);
      const [dgate, dup] = inPlace ? [gate.t, up.t] : [dgateOwn, dupOwn];
      swigluBackward(backend, gate.t, up.t, dout.t, dgate, dup);
      const want = swigluBackwardRef(gate.host, up.host, dout.host);
      assertClose(download(dgate), want.dgate, tol, `dgate ${what}`);
      assertClose(download(dup), want.dup, tol, `dup ${what}`);
      for (const t of [gate.t, up.t, dout.t]) t.free();
    }
  }
});

Deno.test("swiglu: the reference backward equals finite differences of the reference forward", () => {
  const rng = new Rng();
  const gate = rng.normals(20, 3), up = rng.normals(20), g = rng.normals(20);
  const want = swigluBackwardRef(gate, up, g);
  const what = `seed ${rng.seed}`;
  assertClose(want.dgate, numericGradient((x) => dot(swigluRef(x, up), g), gate), 1e-8, `dgate ${what}`);
  assertClose(want.dup, numericGradient((x) => dot(swigluRef(gate, x), g), up), 1e-8, `dup ${what}`);
});

Deno.test("swiglu: the kernel's backward equals a finite difference of the kernel's forward", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const n = 500, h = 1e-2;
  const gate = rng.normals(n, 3), up = rng.normals(n), g = rng.normals(n), ug = rng.normals(n), uu = rng.normals(n);
  using out = backend.empty([n], "f32");
  const loss = (s: number) => {
    using gt = backend.fromHost(gate.map((v, i) => v + s * h * ug[i]), [n], "f32");
    using ut = backend.fromHost(up.map((v, i) => v + s * h * uu[i]), [n], "f32");
    swigluForward(backend, gt, ut, out);
    return dot(out.toHost(), g);
  };
  const numeric = (loss(1) - loss(-1)) / (2 * h);
  using gt = backend.fromHost(gate, [n], "f32");
  using ut = backend.fromHost(up, [n], "f32");
  using dout = backend.fromHost(g, [n], "f32");
  using dgate = backend.empty([n], "f32");
  using dup = backend.empty([n], "f32");
  swigluBackward(backend, gt, ut, dout, dgate, dup);
  // To 5e-6 |grad| |u| (the worst of 40 runs: 7.8e-7), not relative to <grad, u>, which nearly cancels for some u.
  assertDirectionalDerivative(numeric, [dgate.toHost(), dup.toHost()], [ug, uu], 5e-6, `seed ${rng.seed}`);
});
