import assert from "node:assert/strict";
import { KernelError, openBackend } from "../lib/backend/backend.ts";
import { decodeAttention, KvCache, kvCacheAppend } from "../lib/backend/kv_cache.ts";
import { PackedBatch } from "../lib/backend/packed.ts";
import { assertClose } from "./reference/compare.ts";
import { decodeAttentionRef } from "./reference/attention.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";
import { fromBf16, toBf16 } from "../lib/backend/dtype.ts";

const nHeads = 6, nKvHeads = 2, headDim = 24, maxLen = 80;
const width = nKvHeads * headDim;

Deno.test("kv cache: a prompt, then one token per sequence, lands where the layout says", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const dtype of ["f32", "bf16"] as const) {
    using cache = new KvCache(backend, { maxSeqs: 4, maxLen, nKvHeads, headDim, dtype });
    const prompt = [5, 70, 1];
    using batch = PackedBatch.fromLengths(backend, prompt);
    using zero = backend.fromHost(new Int32Array(3), [3], "i32");
    const k = rng.normals(batch.T * width), v = rng.normals(batch.T * width);
    using kt = backend.fromHost(k, [batch.T, width], "f32");
    using vt = backend.fromHost(v, [batch.T, width], "f32");
    kvCacheAppend(backend, cache, batch, zero, kt, vt);
    using one = PackedBatch.fromLengths(backend, [1, 1, 1]);
    using lens = backend.fromHost(Int32Array.from(prompt), [3], "i32");
    const k2 = rng.normals(3 * width);
    using k2t = backend.fromHost(k2, [3, width], "f32");
    kvCacheAppend(backend, cache, one, lens, k2t, k2t);
    const stored = dtype === "f32" ? cache.k.toHost() as Float32Array : fromBf16(cache.k.toHost() as Uint16Array);
    const round = (x: number) => dtype === "f32" ? x : fromBf16(toBf16([x]))[0];
    for (let s = 0, t0 = 0; s < 3; t0 += prompt[s], s++) {
      for (let g = 0; g < nKvHeads; g++) {
        for (let p = 0; p <= prompt[s]; p++) {
          const at = ((s * nKvHeads + g) * maxLen + p) * headDim;
          const src = p < prompt[s] ? k.subarray((t0 + p) * width + g * headDim) : k2.subarray(s * width + g * headDim);
          for (let c = 0; c < headDim; c++) {
            assert.equal(stored[at + c], round(src[c]), `${dtype} slot ${s} head ${g} position ${p} element ${c}`);
          }
        }
      }
    }
  }
});

Deno.test("kv cache: decode attention over the cache matches the float64 reference", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const [cacheDtype, qDtype] of [["f32", "f32"], ["bf16", "f32"], ["f32", "bf16"]] as const) {
    const lengths = [1, 66, 9];
    using cache = new KvCache(backend, { maxSeqs: 3, maxLen, nKvHeads, headDim, dtype: cacheDtype });
    using batch = PackedBatch.fromLengths(backend, lengths);
    using zero = backend.fromHost(new Int32Array(3), [3], "i32");
    const k = upload(backend, rng.normals(batch.T * width), cacheDtype);
    const v = upload(backend, rng.normals(batch.T * width), cacheDtype);
    using kf = backend.fromHost(k.host, [batch.T, width], "f32");
    using vf = backend.fromHost(v.host, [batch.T, width], "f32");
    kvCacheAppend(backend, cache, batch, zero, kf, vf);
    using lens = backend.fromHost(Int32Array.from(lengths), [3], "i32");
    const q = upload(backend, rng.normals(3 * nHeads * headDim), qDtype);
    using out = poisoned(backend, 3 * nHeads * headDim, qDtype);
    decodeAttention(backend, cache, lens, q.t, out, nHeads);
    const per = (a: Float32Array) => {
      let at = 0;
      return lengths.map((l) => a.subarray(at * width, (at += l) * width));
    };
    const want = decodeAttentionRef(
      q.host,
      per(k.host),
      per(v.host),
      nHeads,
      nKvHeads,
      headDim,
      1 / Math.sqrt(headDim),
    );
    const tol = qDtype === "f32" ? 1e-5 : 1e-2;
    assertClose(download(out), want, tol, `cache ${cacheDtype} q ${qDtype} seed ${rng.seed}`);
    for (const t of [k.t, v.t, q.t]) t.free();
  }
});

Deno.test("kv cache: overflowing a slot or decoding an empty one fails with a message", async () => {
  using backend = await openBackend("cpu");
  using cache = new KvCache(backend, { maxSeqs: 1, maxLen: 4, nKvHeads: 1, headDim: 8 });
  using batch = PackedBatch.fromLengths(backend, [2]);
  using lens = backend.fromHost(new Int32Array([3]), [1], "i32");
  using kv = backend.filled([2, 8], "f32");
  assert.throws(
    () => kvCacheAppend(backend, cache, batch, lens, kv, kv),
    (e: unknown) =>
      e instanceof KernelError && /holds 3 cached tokens and appends 2, beyond max_len = 4/.test(e.message),
  );
  using empty = backend.fromHost(new Int32Array([0]), [1], "i32");
  using q = backend.filled([1, 8], "f32");
  using out = backend.empty([1, 8], "f32");
  assert.throws(
    () => decodeAttention(backend, cache, empty, q, out, 1),
    (e: unknown) => e instanceof KernelError && /cache_lens\[0\] = 0 must be in 1..max_len = 4/.test(e.message),
  );
});
