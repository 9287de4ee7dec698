import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { addScaled } from "../lib/backend/residual.ts";
import { assertClose } from "./reference/compare.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";

type Dt = "f32" | "bf16";

Deno.test("add_scaled: y = alpha a + beta b for every dtype mix, in place or not", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const cases: { n: number; a: Dt; b: Dt | null; y: Dt; alpha: number; beta: number; into: "y" | "a" | "b" }[] = [
    { n: 1, a: "f32", b: "f32", y: "f32", alpha: 1, beta: 1, into: "y" },
    { n: 5000, a: "f32", b: "bf16", y: "f32", alpha: 1, beta: 1, into: "a" },
    { n: 1031, a: "bf16", b: "f32", y: "bf16", alpha: 0.5, beta: -2, into: "b" },
    { n: 777, a: "f32", b: null, y: "bf16", alpha: -3, beta: 0, into: "y" },
  ];
  for (const c of cases) {
    const a = upload(backend, rng.normals(c.n), c.a);
    const b = c.b ? upload(backend, rng.normals(c.n), c.b) : null;
    using own = poisoned(backend, c.n, c.y);
    const y = c.into === "a" ? a.t : c.into === "b" ? b!.t : own;
    addScaled(backend, y, a.t, b?.t ?? null, { alpha: c.alpha, beta: c.beta });
    const want = Float64Array.from(a.host, (v, i) => c.alpha * v + (b ? c.beta * b.host[i] : 0));
    const tol = [c.a, c.b, c.y, y.dtype].includes("bf16") ? 1e-2 : 1e-7;
    assertClose(download(y), want, tol, `${JSON.stringify(c)} seed ${rng.seed}`);
    a.t.free();
    b?.t.free();
  }
});

Deno.test("add_scaled: a missing b with a non-zero beta fails with a message", async () => {
  using backend = await openBackend("cpu");
  using a = backend.filled([3], "f32");
  assert.throws(
    () => backend.check(backend.lib.symbols.lorac_add_scaled!(backend.ctx, 3n, 1, a.ptr, 0, 2, null, 0, a.ptr, 0)),
    /b is NULL but beta = 2/,
  );
});
