import assert from "node:assert/strict";
import { type Backend, KernelError, openBackend } from "../lib/backend/backend.ts";
import { dtypeCode, fromBf16, toBf16 } from "../lib/backend/dtype.ts";
import { type FloatTensor, nf4Gemm, nf4GemmDx } from "../lib/backend/gemm.ts";
import { nf4Weight } from "../lib/backend/nf4.ts";
import { assertClose, poison, relativeError } from "./reference/compare.ts";
import { gemmRef, nf4GemmDxRef, nf4GemmRef } from "./reference/gemm.ts";
import { nf4DequantizeRef } from "./reference/nf4.ts";
import { Rng } from "./reference/random.ts";

type Float = "f32" | "bf16";

// Every kernel path this CPU can run, lowest first; LORAC_CPU_ISA selects one.
const levels = ["portable", "avx2", "avx512", "amx"];
const paths = await (async () => {
  using backend = await openBackend("cpu");
  const widest = backend.deviceName.split(", ").pop()!;
  return levels.slice(0, levels.indexOf(widest) + 1);
})();

function withIsa<T>(isa: string, fn: () => T): T {
  const before = Deno.env.get("LORAC_CPU_ISA");
  Deno.env.set("LORAC_CPU_ISA", isa);
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("LORAC_CPU_ISA");
    else Deno.env.set("LORAC_CPU_ISA", before);
  }
}

/** The values a dtype can hold: bf16 rounds. */
function exact(values: Float32Array, dtype: Float): Float32Array {
  return dtype === "f32" ? values : fromBf16(toBf16(values));
}

// Empty tensors skip the copy: a zero-length host array reaches the library as NULL.
function upload(backend: Backend, values: Float32Array, shape: number[], dtype: Float): FloatTensor {
  if (values.length === 0) return backend.empty(shape, dtype);
  return dtype === "f32" ? backend.fromHost(values, shape, "f32") : backend.fromHost(toBf16(values), shape, "bf16");
}

function download(t: FloatTensor): Float32Array {
  if (t.numel === 0) return new Float32Array(0);
  const host = t.toHost();
  return host instanceof Float32Array ? host : fromBf16(host as Uint16Array);
}

/**
 * Tolerance: fp32 sums of exact inputs agree to ~1e-6; a bf16 output rounds,
 * and the avx512 path may multiply bf16 inputs with bf16 products (vdpbf16ps).
 */
function tolerance(out: Float, bf16Products: boolean): number {
  return out === "bf16" || bf16Products ? 1e-2 : 1e-5;
}

// ---- NF4 GEMM and its input gradient -----------------------------------------

const nf4Cases = [
  { M: 37, N: 53, K: 192, blocksize: 64 },
  { M: 37, N: 32, K: 130, blocksize: 64 }, // blocks straddle rows of W
  { M: 5, N: 64, K: 38, blocksize: 128 }, // a block spans several rows
  { M: 150, N: 41, K: 512, blocksize: 256 }, // more rows than one A block
  { M: 300, N: 40, K: 320, blocksize: 64 }, // two threads split the rows
  { M: 8, N: 2100, K: 64, blocksize: 64 }, // two threads split the columns; wider than one B panel
  { M: 20, N: 24, K: 1200, blocksize: 64 }, // several k slices on every path
  { M: 1, N: 16, K: 8, blocksize: 128 },
  { M: 4, N: 5, K: 0, blocksize: 64 }, // empty reduction: Y = 0 (or unchanged)
];

/**
 * A random NF4 [N, K] weight on the backend (`q`, disposed with the result) and `w`, what it dequantizes to: the
 * f32 products of codes and absmax (exact in float64, then rounded).
 */
function randomNf4(backend: Backend, rng: Rng, N: number, K: number, blocksize: number) {
  const packed = new Uint8Array(N * K / 2).map(() => rng.int(0, 255));
  const absmax = new Float32Array(N * K / blocksize).map(() => rng.uniform(0.01, 2));
  const q = nf4Weight(
    packed.length ? backend.fromHost(packed, [N, K], "nf4") : backend.empty([N, K], "nf4"),
    absmax.length ? backend.fromHost(absmax, [absmax.length], "f32") : backend.empty([0], "f32"),
    blocksize,
  );
  const w = Float32Array.from(nf4DequantizeRef(packed, absmax, N * K, blocksize));
  return { q, w, [Symbol.dispose]: () => q[Symbol.dispose]() };
}

for (const path of paths) {
  for (const direction of ["forward", "dx"] as const) {
    Deno.test(`gemm: nf4 ${direction} matches the float64 reference (${path})`, async () => {
      using backend = await openBackend("cpu");
      const rng = new Rng();
      for (const { M, N, K, blocksize } of nf4Cases) {
        using nf4 = randomNf4(backend, rng, N, K, blocksize);
        const { q, w } = nf4;
        const [inRows, inCols, outCols] = direction === "forward" ? [M, K, N] : [M, N, K];
        const input = rng.normals(inRows * inCols);
        const old = rng.normals(M * outCols);
        for (const inDtype of ["f32", "bf16"] as const) {
          const x = exact(input, inDtype);
          const product = direction === "forward" ? nf4GemmRef(x, M, N, K, w) : nf4GemmDxRef(x, M, N, K, w);
          using xt = upload(backend, x, [inRows, inCols], inDtype);
          for (const outDtype of ["f32", "bf16"] as const) {
            for (const accumulate of [false, true]) {
              const y0 = exact(old, outDtype);
              using yt = upload(backend, accumulate ? y0 : poison(M * outCols), [M, outCols], outDtype);
              withIsa(path, () => {
                if (direction === "forward") nf4Gemm(backend, xt, q, yt, accumulate);
                else nf4GemmDx(backend, xt, q, yt, accumulate);
              });
              const want = accumulate ? product.map((v, i) => v + y0[i]) : product;
              const what = `nf4 ${direction} ${path} M=${M} N=${N} K=${K} bs=${blocksize} in=${inDtype} ` +
                `out=${outDtype} accumulate=${accumulate} seed=${rng.seed}`;
              // bf16 inputs times NF4 weights still multiply in f32: a code times its absmax is no bf16 number.
              assertClose(download(yt), want, tolerance(outDtype, false), what);
            }
          }
        }
      }
    });
  }
}

// The CPU paths that multiply in bf16 when asked: AMX, and AVX-512 where the CPU has AVX512-BF16.
const avx512Bf16 = await Deno.readTextFile("/proc/cpuinfo").then((t) => t.includes(" avx512_bf16"), () => false);

for (const path of paths) {
  Deno.test(`gemm: nf4 with compute dtype bf16 multiplies operands rounded to bf16 (${path})`, async () => {
    using backend = await openBackend("cpu", { computeDtype: "bf16" });
    const rounds = path === "amx" || (path === "avx512" && avx512Bf16);
    const rng = new Rng();
    // The AMX path packs whole 32-wide panels of 32-aligned NF4 runs with AVX-512 and C tiles of 32 x 32 in place:
    // the last case has only such panels and tiles, over three k slices.
    const cases = [...nf4Cases.filter((c) => c.M * c.N * c.K > 0), { M: 64, N: 64, K: 1088, blocksize: 64 }];
    for (const { M, N, K, blocksize } of cases) {
      using nf4 = randomNf4(backend, rng, N, K, blocksize);
      const { q, w } = nf4;
      for (const direction of ["forward", "dx"] as const) {
        const [inCols, outCols] = direction === "forward" ? [K, N] : [N, K];
        const x = rng.normals(M * inCols);
        const old = rng.normals(M * outCols);
        const ref = (x: Float32Array, w: Float32Array, accumulate: boolean) =>
          (direction === "forward" ? nf4GemmRef(x, M, N, K, w) : nf4GemmDxRef(x, M, N, K, w))
            .map((v, i) => accumulate ? v + old[i] : v);
        using xt = upload(backend, x, [M, inCols], "f32");
        for (const accumulate of [false, true]) {
          using yt = upload(backend, accumulate ? old : poison(M * outCols), [M, outCols], "f32");
          withIsa(
            path,
            () =>
              direction === "forward"
                ? nf4Gemm(backend, xt, q, yt, accumulate)
                : nf4GemmDx(backend, xt, q, yt, accumulate),
          );
          const what = `nf4 ${direction} bf16 compute ${path} M=${M} N=${N} K=${K} accumulate=${accumulate} ` +
            `seed=${rng.seed}`;
          const got = download(yt);
          const want = rounds ? ref(exact(x, "bf16"), exact(w, "bf16"), accumulate) : ref(x, w, accumulate);
          assertClose(got, want, 1e-5, what);
          if (rounds) {
            // Much nearer the rounded operands' product than the exact one (how near the two are depends on the case).
            const fromExact = relativeError(got, ref(x, w, accumulate));
            assert.ok(fromExact > 10 * relativeError(got, want), `${what}: the operands were not rounded`);
          }
        }
      }
    }
  });
}

// ---- dense GEMM ----------------------------------------------------------------

const denseCases = [
  { transA: false, transB: false, M: 37, N: 53, K: 130, pad: [0, 0, 0], alpha: 1, beta: 0 },
  { transA: true, transB: false, M: 29, N: 45, K: 67, pad: [3, 0, 5], alpha: 0.5, beta: 0 },
  { transA: false, transB: true, M: 41, N: 19, K: 300, pad: [0, 2, 0], alpha: 0.75, beta: -0.5 },
  { transA: true, transB: true, M: 150, N: 35, K: 33, pad: [1, 1, 1], alpha: -1.5, beta: 0.25 },
  { transA: false, transB: true, M: 300, N: 40, K: 90, pad: [2, 0, 3], alpha: 1, beta: 0 }, // two threads split the rows
  { transA: false, transB: false, M: 8, N: 2100, K: 64, pad: [0, 1, 0], alpha: 2, beta: -1 }, // ... the columns
  { transA: true, transB: false, M: 30, N: 20, K: 700, pad: [1, 0, 2], alpha: 1.5, beta: 0.5 }, // several k slices
  { transA: true, transB: false, M: 1, N: 1, K: 1, pad: [0, 0, 0], alpha: 1, beta: 0 },
  { transA: false, transB: false, M: 5, N: 6, K: 0, pad: [0, 0, 2], alpha: 1, beta: 0.5 }, // C = beta * C
  { transA: false, transB: false, M: 7, N: 9, K: 11, pad: [0, 0, 0], alpha: 0, beta: 0 }, // C = 0
];

const denseDtypes: [Float, Float, Float][] = [
  ["f32", "f32", "f32"],
  ["bf16", "bf16", "bf16"],
  ["bf16", "bf16", "f32"],
  ["f32", "bf16", "bf16"],
  ["bf16", "f32", "f32"],
];

/** A [rows, cols] matrix stored with row stride ld; the padding holds NaN, which must never be read. */
function padded(rng: Rng, rows: number, cols: number, ld: number): Float32Array {
  const out = poison(rows * ld);
  for (let r = 0; r < rows; r++) out.set(rng.normals(cols), r * ld);
  return out;
}

for (const path of paths) {
  Deno.test(`gemm: dense matches the float64 reference (${path})`, async () => {
    using backend = await openBackend("cpu");
    const rng = new Rng();
    const sentinel = 7;
    for (const { transA, transB, M, N, K, pad, alpha, beta } of denseCases) {
      const [aRows, aCols] = transA ? [K, M] : [M, K];
      const [bRows, bCols] = transB ? [N, K] : [K, N];
      const [lda, ldb, ldc] = [Math.max(1, aCols + pad[0]), Math.max(1, bCols + pad[1]), N + pad[2]];
      const aValues = padded(rng, aRows, aCols, lda);
      const bValues = padded(rng, bRows, bCols, ldb);
      // C's padding holds a sentinel that must survive; with beta = 0 its body is NaN.
      const cValues = new Float32Array(M * ldc).fill(sentinel);
      for (let i = 0; i < M; i++) cValues.set(beta === 0 ? poison(N) : rng.normals(N), i * ldc);
      for (const [aDtype, bDtype, cDtype] of denseDtypes) {
        const [a, b, c] = [exact(aValues, aDtype), exact(bValues, bDtype), exact(cValues, cDtype)];
        const want = gemmRef({ transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc });
        using at = upload(backend, a, [aValues.length], aDtype);
        using bt = upload(backend, b, [bValues.length], bDtype);
        using ct = upload(backend, c, [cValues.length], cDtype);
        withIsa(path, () =>
          backend.check(backend.lib.symbols.lorac_gemm(
            backend.ctx,
            transA ? 1 : 0,
            transB ? 1 : 0,
            M,
            N,
            K,
            alpha,
            at.ptr,
            dtypeCode[aDtype],
            lda,
            bt.ptr,
            dtypeCode[bDtype],
            ldb,
            beta,
            ct.ptr,
            dtypeCode[cDtype],
            ldc,
          )));
        const out = download(ct);
        const body = new Float32Array(M * N);
        for (let i = 0; i < M; i++) {
          body.set(out.subarray(i * ldc, i * ldc + N), i * N);
          for (let j = N; j < ldc; j++) assert.equal(out[i * ldc + j], sentinel, `C padding written (${path})`);
        }
        const what = `gemm ${path} transA=${transA} transB=${transB} M=${M} N=${N} K=${K} ` +
          `ld=${lda},${ldb},${ldc} alpha=${alpha} beta=${beta} ${aDtype}·${bDtype}->${cDtype} seed=${rng.seed}`;
        const bf16Products = (path === "avx512" || path === "amx") && aDtype === "bf16" && bDtype === "bf16";
        assertClose(body, want, tolerance(cDtype, bf16Products), what);
      }
    }
  });
}

// ---- argument checks -------------------------------------------------------------

Deno.test("gemm: bad arguments fail with a message that says what to fix", async () => {
  using backend = await openBackend("cpu");
  using buf = backend.filled([4096], "f32");
  const s = backend.lib.symbols;
  const p = buf.ptr;
  const cases: [string, () => number, RegExp][] = [
    ["odd K", () => s.lorac_nf4_gemm(backend.ctx, 2, 64, 33, p, 0, p, p, 64, p, 0, 0), /K=33 must be even/],
    [
      "N*K not a multiple of blocksize",
      () => s.lorac_nf4_gemm_dx(backend.ctx, 2, 3, 10, p, 0, p, p, 64, p, 0, 0),
      /N\*K=30 is not a multiple of blocksize 64/,
    ],
    ["blocksize", () => s.lorac_nf4_gemm(backend.ctx, 2, 4, 48, p, 0, p, p, 48, p, 0, 0), /power of two/],
    ["input dtype", () => s.lorac_nf4_gemm(backend.ctx, 2, 4, 32, p, 2, p, p, 64, p, 0, 0), /must be F32 \(0\)/],
    ["negative size", () => s.lorac_nf4_gemm(backend.ctx, -1, 4, 32, p, 0, p, p, 64, p, 0, 0), /M=-1/],
    [
      "lda too small",
      () => s.lorac_gemm(backend.ctx, 0, 0, 4, 4, 8, 1, p, 0, 7, p, 0, 4, 0, p, 0, 4),
      /lda=7 is less than the 8 columns/,
    ],
    [
      "ldb too small (trans_b)",
      () => s.lorac_gemm(backend.ctx, 0, 1, 4, 4, 8, 1, p, 0, 8, p, 0, 4, 0, p, 0, 4),
      /ldb=4 is less than the 8 columns of B as stored \(trans_b/,
    ],
    ["c dtype", () => s.lorac_gemm(backend.ctx, 0, 0, 4, 4, 8, 1, p, 0, 8, p, 0, 4, 0, p, 3, 4), /c_dtype/],
    ["null C", () => s.lorac_gemm(backend.ctx, 0, 0, 4, 4, 8, 1, p, 0, 8, p, 0, 4, 0, null, 0, 4), /C is NULL/],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(
      () => backend.check(call()),
      (e: unknown) => e instanceof KernelError && message.test(e.message),
      what,
    );
  }
});

Deno.test("gemm: LORAC_CPU_ISA is read on every call and must name a path", async () => {
  using backend = await openBackend("cpu");
  using x = backend.fromHost(new Float32Array(2 * 64).fill(1), [2, 64], "f32");
  using q = nf4Weight(
    backend.fromHost(new Uint8Array(3 * 32).fill(0xff), [3, 64], "nf4"),
    backend.fromHost(new Float32Array(3).fill(0.5), [3], "f32"),
    64,
  );
  using y = backend.empty([2, 3], "f32");
  assert.throws(
    () => withIsa("sse9", () => nf4Gemm(backend, x, q, y)),
    /LORAC_CPU_ISA=sse9 is not one of portable, avx2, avx512, amx/,
  );
  // A level above the CPU's is lowered to what it has, never refused.
  withIsa("amx", () => nf4Gemm(backend, x, q, y));
  assert.deepEqual(download(y), new Float32Array(6).fill(32));
});
