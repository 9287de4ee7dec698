import assert from "node:assert/strict";
import { KernelError, openBackend } from "../lib/backend/backend.ts";
import { embedding } from "../lib/backend/embedding.ts";
import { assertClose } from "./reference/compare.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";

Deno.test("embedding: gathers the rows of ids from an f32 or bf16 table", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const cases = [
    { vocab: 1, dim: 1, n: 3, table: "f32", out: "f32" },
    { vocab: 517, dim: 64, n: 100, table: "bf16", out: "f32" },
    { vocab: 49, dim: 577, n: 9, table: "f32", out: "bf16" },
  ] as const;
  for (const c of cases) {
    const table = upload(backend, rng.normals(c.vocab * c.dim), c.table, [c.vocab, c.dim]);
    const idsHost = Int32Array.from({ length: c.n }, () => rng.int(0, c.vocab - 1));
    using ids = backend.fromHost(idsHost, [c.n], "i32");
    using out = poisoned(backend, c.n * c.dim, c.out);
    embedding(backend, ids, table.t, out);
    const want = new Float64Array(c.n * c.dim);
    idsHost.forEach((id, i) => want.set(table.host.subarray(id * c.dim, (id + 1) * c.dim), i * c.dim));
    assertClose(download(out), want, c.out === "bf16" ? 1e-2 : 0, `${JSON.stringify(c)} seed ${rng.seed}`);
    table.t.free();
  }
});

Deno.test("embedding: an id outside the vocabulary fails with a message that names it", async () => {
  using backend = await openBackend("cpu");
  using table = backend.filled([10, 4], "f32");
  using ids = backend.fromHost(new Int32Array([3, 10]), [2], "i32");
  using out = backend.empty([2, 4], "f32");
  assert.throws(
    () => embedding(backend, ids, table, out),
    (e: unknown) => e instanceof KernelError && /ids\[1\] = 10 is outside the vocabulary \[0, 10\)/.test(e.message),
  );
});
