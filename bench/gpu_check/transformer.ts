/**
 * The transformer ops (embedding, RMSNorm, RoPE, attention over packed
 * sequences, SwiGLU, add_scaled, lm_head + cross-entropy, logits, KV cache and
 * decode attention) on both builds with the same inputs, compared. Both
 * compute in fp32; the lm_head's products run on bf16 tensor cores on the GPU
 * when W is BF16.
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { attentionBackward, attentionForward } from "../../lib/backend/attention.ts";
import { linearCrossEntropy, linearLogits } from "../../lib/backend/cross_entropy.ts";
import { embedding } from "../../lib/backend/embedding.ts";
import { decodeAttention, KvCache, kvCacheAppend } from "../../lib/backend/kv_cache.ts";
import { rmsnormBackward, rmsnormForward } from "../../lib/backend/norm.ts";
import { PackedBatch } from "../../lib/backend/packed.ts";
import { addScaled } from "../../lib/backend/residual.ts";
import { ropeBackward, ropeForward } from "../../lib/backend/rope.ts";
import { swigluBackward, swigluForward } from "../../lib/backend/swiglu.ts";
import { poison, relativeError } from "../../tests/reference/compare.ts";
import type { Rng } from "../../tests/reference/random.ts";
import {
  attempt,
  bitDifferences,
  type Check,
  download,
  onBoth,
  TOL_BF16_OUT,
  TOL_F32,
  TOL_TENSOR_CORE,
  upload,
} from "./ops.ts";

type Float = "f32" | "bf16";

/** Attention sums exponentials over hundreds of keys in a different order on each side. */
const TOL_ATTENTION = 1e-4;

/** The bound for an fp32 computation whose output has this dtype. */
function tolFor(dtype: Float, f32 = TOL_F32): number {
  return dtype === "f32" ? f32 : TOL_BF16_OUT;
}

/** Compares each named output of two runs with one bound (or bit for bit when tol is 0). */
function compareAll(
  name: string,
  tol: number,
  run: (b: Backend) => Record<string, Float32Array>,
  cpu: Backend,
  gpu: Backend,
): Check[] {
  let outs: Record<string, Float32Array>[] = [];
  const first = attempt(`${name}: runs`, 0, () => {
    outs = onBoth(cpu, gpu, run);
    return 0;
  });
  if (!first.pass) return [first];
  return Object.keys(outs[0]).map((key) =>
    attempt(
      `${name}: ${key}`,
      tol,
      () => tol === 0 ? bitDifferences(outs[0][key], outs[1][key]) : relativeError(outs[1][key], outs[0][key]),
    )
  );
}

function elementwiseChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const n = 10001;
  const [a, b, c] = [rng.normals(n, 3), rng.normals(n, 3), rng.normals(n)];
  for (const dtype of ["f32", "bf16"] as const) {
    checks.push(...compareAll(
      `add_scaled n=${n} ${dtype}`,
      0,
      (be) => {
        using at = upload(be, a, [n], dtype);
        using bt = upload(be, b, [n], "f32");
        using y = upload(be, poison(n), [n], dtype);
        using y2 = upload(be, poison(n), [n], "f32");
        addScaled(be, y, at, bt, { alpha: 0.7, beta: -1.3 });
        addScaled(be, y2, at, null, { alpha: 0.5 });
        return { "alpha a + beta b": download(y), "alpha a": download(y2) };
      },
      cpu,
      gpu,
    ));
    checks.push(...compareAll(
      `swiglu n=${n} ${dtype}`,
      tolFor(dtype),
      (be) => {
        using gate = upload(be, a, [n], dtype);
        using up = upload(be, b, [n], dtype);
        using dout = upload(be, c, [n], dtype);
        using out = upload(be, poison(n), [n], dtype);
        using dgate = upload(be, poison(n), [n], dtype);
        using dup = upload(be, poison(n), [n], dtype);
        swigluForward(be, gate, up, out);
        swigluBackward(be, gate, up, dout, dgate, dup);
        return { out: download(out), dgate: download(dgate), dup: download(dup) };
      },
      cpu,
      gpu,
    ));
  }
  const vocab = 97, dim = 75, count = 130;
  const table = rng.normals(vocab * dim);
  const ids = Int32Array.from({ length: count }, () => rng.int(0, vocab - 1));
  for (const [tableDtype, outDtype] of [["f32", "bf16"], ["bf16", "f32"]] as const) {
    checks.push(...compareAll(
      `embedding n=${count} ${tableDtype}->${outDtype}`,
      0,
      (be) => {
        using t = upload(be, table, [vocab, dim], tableDtype);
        using idt = be.fromHost(ids, [count], "i32");
        using out = upload(be, poison(count * dim), [count, dim], outDtype);
        embedding(be, idt, t, out);
        return { out: download(out) };
      },
      cpu,
      gpu,
    ));
  }
  return checks;
}

function normRopeChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const rows = 37, dim = 203;
  const x = rng.normals(rows * dim, 2),
    w = rng.normals(dim),
    dy = rng.normals(rows * dim),
    dx0 = rng.normals(rows * dim);
  for (const dtype of ["f32", "bf16"] as const) {
    checks.push(...compareAll(
      `rmsnorm rows=${rows} dim=${dim} ${dtype}`,
      tolFor(dtype),
      (be) => {
        using xt = upload(be, x, [rows, dim], dtype);
        using wt = upload(be, w, [dim], dtype);
        using y = upload(be, poison(rows * dim), [rows, dim], dtype);
        using rstd = be.fromHost(poison(rows), [rows], "f32");
        using dyt = upload(be, dy, [rows, dim], dtype);
        using dx = upload(be, poison(rows * dim), [rows, dim], dtype);
        using dxAcc = upload(be, dx0, [rows, dim], dtype);
        rmsnormForward(be, xt, wt, y, rstd, 1e-5);
        rmsnormBackward(be, xt, wt, rstd, dyt, dx);
        rmsnormBackward(be, xt, wt, rstd, dyt, dxAcc, true);
        return { y: download(y), rstd: rstd.toHost(), dx: download(dx), "dx accumulated": download(dxAcc) };
      },
      cpu,
      gpu,
    ));
  }
  const lengths = [5, 17, 1, 40], nHeads = 3, headDim = 64;
  const T = lengths.reduce((s, l) => s + l, 0);
  const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-2 * i / headDim));
  const xr = rng.normals(T * nHeads * headDim);
  for (const dtype of ["f32", "bf16"] as const) {
    checks.push(...compareAll(
      `rope T=${T} heads=${nHeads} head_dim=${headDim} ${dtype}`,
      tolFor(dtype),
      (be) => {
        using batch = PackedBatch.fromLengths(be, lengths);
        using inv = be.fromHost(invFreq, [invFreq.length], "f32");
        const angles = { positions: batch.positions, invFreq: inv };
        using src = upload(be, xr, [T, nHeads * headDim], dtype);
        using y = upload(be, poison(xr.length), [T, nHeads * headDim], dtype);
        ropeForward(be, src, y, angles, nHeads);
        const forward = download(y);
        ropeBackward(be, y, y, angles, nHeads); // in place
        return { forward, "backward (in place)": download(y) };
      },
      cpu,
      gpu,
    ));
  }
  return checks;
}

function attentionChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const cases = [
    { lengths: [37, 1, 70, 5], nHeads: 6, nKvHeads: 2, headDim: 64, dtype: "f32" },
    { lengths: [130], nHeads: 4, nKvHeads: 4, headDim: 40, dtype: "f32" },
    { lengths: [9, 66], nHeads: 8, nKvHeads: 1, headDim: 128, dtype: "bf16" },
  ] as const;
  for (const { lengths, nHeads, nKvHeads, headDim, dtype } of cases) {
    const T = lengths.reduce((s, l) => s + l, 0);
    const heads = { nHeads, nKvHeads, headDim };
    const [q, k, v, dout] = [nHeads, nKvHeads, nKvHeads, nHeads].map((h) => rng.normals(T * h * headDim));
    const name = `attention lengths=${lengths} heads=${nHeads}/${nKvHeads} head_dim=${headDim} ${dtype}`;
    checks.push(...compareAll(
      name,
      tolFor(dtype, TOL_ATTENTION),
      (be) => {
        using batch = PackedBatch.fromLengths(be, lengths);
        using qt = upload(be, q, [T, nHeads * headDim], dtype);
        using kt = upload(be, k, [T, nKvHeads * headDim], dtype);
        using vt = upload(be, v, [T, nKvHeads * headDim], dtype);
        using out = upload(be, poison(q.length), [T, nHeads * headDim], dtype);
        using lse = be.fromHost(poison(nHeads * T), [nHeads, T], "f32");
        attentionForward(be, batch, heads, qt, kt, vt, out, lse);
        using dot = upload(be, dout, [T, nHeads * headDim], dtype);
        using dq = upload(be, poison(q.length), [T, nHeads * headDim], dtype);
        using dk = upload(be, poison(k.length), [T, nKvHeads * headDim], dtype);
        using dv = upload(be, poison(v.length), [T, nKvHeads * headDim], dtype);
        attentionBackward(be, batch, heads, qt, kt, vt, out, lse, { dout: dot, dq, dk, dv });
        return { out: download(out), lse: lse.toHost(), dq: download(dq), dk: download(dk), dv: download(dv) };
      },
      cpu,
      gpu,
    ));
  }
  return checks;
}

function crossEntropyChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const cases = [
    { T: 50, D: 96, V: 1000, nRows: 20, h: "f32", w: "f32", accumulate: true, tol: TOL_F32 },
    { T: 50, D: 96, V: 1000, nRows: 20, h: "bf16", w: "bf16", accumulate: false, tol: TOL_TENSOR_CORE },
    { T: 1200, D: 40, V: 4000, nRows: 1100, h: "f32", w: "f32", accumulate: false, tol: TOL_F32 }, // vocabulary chunks
  ] as const;
  for (const { T, D, V, nRows, h, w, accumulate, tol } of cases) {
    const H = rng.normals(T * D), W = rng.normals(V * D, 0.2), dH0 = rng.normals(T * D);
    // Distinct rows (a gradient row each), in random order.
    const order = Int32Array.from({ length: T }, (_, i) => i);
    for (let i = T - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const rows = order.slice(0, nRows);
    const targets = Int32Array.from({ length: nRows }, () => rng.int(0, V - 1));
    const name = `linear cross-entropy T=${T} D=${D} V=${V} rows=${nRows} H ${h} W ${w}` +
      (accumulate ? " accumulate" : "");
    checks.push(...compareAll(
      name,
      tol,
      (be) => {
        using ht = upload(be, H, [T, D], h);
        using wt = upload(be, W, [V, D], w);
        using rt = be.fromHost(rows, [nRows], "i32");
        using tt = be.fromHost(targets, [nRows], "i32");
        using lossSum = be.fromHost(poison(1), [1], "f32");
        using rowLoss = be.fromHost(poison(nRows), [nRows], "f32");
        using dH = upload(be, dH0, [T, D], h);
        linearCrossEntropy(be, ht, wt, rt, tt, { lossSum, rowLoss, dH, gradScale: 1 / nRows, accumulate });
        using logits = be.fromHost(poison(nRows * V), [nRows, V], "f32");
        linearLogits(be, ht, wt, rt, logits);
        return {
          "loss sum": lossSum.toHost(),
          "row losses": rowLoss.toHost(),
          dH: download(dH),
          logits: logits.toHost(),
        };
      },
      cpu,
      gpu,
    ));
  }
  return checks;
}

function kvCacheChecks(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  const checks: Check[] = [];
  const prompt = [7, 1, 20], maxLen = 50, nKvHeads = 2, nHeads = 6, headDim = 64;
  const T = prompt.reduce((s, l) => s + l, 0);
  const [k0, v0] = [rng.normals(T * nKvHeads * headDim), rng.normals(T * nKvHeads * headDim)];
  const [k1, v1] = [rng.normals(3 * nKvHeads * headDim), rng.normals(3 * nKvHeads * headDim)];
  const q = rng.normals(3 * nHeads * headDim);
  for (const [dtype, cacheDtype] of [["f32", "f32"], ["bf16", "f32"], ["f32", "bf16"]] as const) {
    const name = `kv cache prompts=${prompt} + 1 token, heads=${nHeads}/${nKvHeads} ${dtype} in a ${cacheDtype} cache`;
    checks.push(...compareAll(
      name,
      tolFor(dtype === "bf16" || cacheDtype === "bf16" ? "bf16" : "f32"),
      (be) => {
        using cache = new KvCache(be, { maxSeqs: 3, maxLen, nKvHeads, headDim, dtype: cacheDtype });
        for (const t of [cache.k, cache.v]) be.check(be.lib.symbols.lorac_memset(be.ctx, t.ptr, 0, BigInt(t.bytes)));
        using first = PackedBatch.fromLengths(be, prompt);
        using lens0 = be.fromHost(new Int32Array(3), [3], "i32");
        using kt0 = upload(be, k0, [T, nKvHeads * headDim], dtype);
        using vt0 = upload(be, v0, [T, nKvHeads * headDim], dtype);
        kvCacheAppend(be, cache, first, lens0, kt0, vt0);
        using next = PackedBatch.fromLengths(be, [1, 1, 1]);
        using lens1 = be.fromHost(Int32Array.from(prompt), [3], "i32");
        using kt1 = upload(be, k1, [3, nKvHeads * headDim], dtype);
        using vt1 = upload(be, v1, [3, nKvHeads * headDim], dtype);
        kvCacheAppend(be, cache, next, lens1, kt1, vt1);
        using lens2 = be.fromHost(Int32Array.from(prompt, (l) => l + 1), [3], "i32");
        using qt = upload(be, q, [3, nHeads * headDim], dtype);
        using out = upload(be, poison(q.length), [3, nHeads * headDim], dtype);
        decodeAttention(be, cache, lens2, qt, out, nHeads);
        return { "k cache": download(cache.k), "v cache": download(cache.v), "decode out": download(out) };
      },
      cpu,
      gpu,
    ));
  }
  return checks;
}

/**
 * Runs every transformer-op comparison; `rng` draws the inputs.
 *
 * @example
 * ```ts ignore
 * import { openBackend } from "../../lib/backend/backend.ts";
 * import { Rng } from "../../tests/reference/random.ts";
 * import { checkTransformerOps } from "./transformer.ts";
 * using cpu = await openBackend("cpu");
 * using gpu = await openBackend("cuda");
 * const failed = checkTransformerOps(cpu, gpu, new Rng(1)).filter((c) => !c.pass);
 * ```
 */
export function checkTransformerOps(cpu: Backend, gpu: Backend, rng: Rng): Check[] {
  return [
    ...elementwiseChecks(cpu, gpu, rng),
    ...normRopeChecks(cpu, gpu, rng),
    ...attentionChecks(cpu, gpu, rng),
    ...crossEntropyChecks(cpu, gpu, rng),
    ...kvCacheChecks(cpu, gpu, rng),
  ];
}
