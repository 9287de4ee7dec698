import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { cuSeqlensOf, positionsFromCuSeqlens } from "../lib/backend/packed.ts";
import { ropeBackward, ropeForward } from "../lib/backend/rope.ts";
import { ropeInvFreq } from "../lib/backend/rope_freqs.ts";
import { assertClose } from "./reference/compare.ts";
import { dot, numericGradient } from "./reference/finite_diff.ts";
import { download, poisoned, upload } from "./reference/float_tensors.ts";
import { Rng } from "./reference/random.ts";
import { ropeRef } from "./reference/rope.ts";

interface Case {
  positions: Int32Array;
  nHeads: number;
  headDim: number;
  dtype: "f32" | "bf16";
  inPlace: boolean;
}

const llama3 = ropeInvFreq({
  hidden_size: 2048,
  num_attention_heads: 32,
  rope_theta: 500000,
  rope_scaling: {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
});

const cases: Case[] = [
  // Packed sequences: positions restart, so the kernel tabulates by position.
  {
    positions: positionsFromCuSeqlens(cuSeqlensOf([5, 70, 1, 33])),
    nHeads: 3,
    headDim: 64,
    dtype: "f32",
    inPlace: false,
  },
  { positions: positionsFromCuSeqlens(cuSeqlensOf([9, 12])), nHeads: 2, headDim: 8, dtype: "bf16", inPlace: true },
  // Decoding: a few tokens at far positions, so the kernel tabulates by token.
  { positions: new Int32Array([4095, 17, 130000]), nHeads: 4, headDim: 64, dtype: "f32", inPlace: true },
];

function invFreqFor(headDim: number): Float32Array {
  return headDim === 64 ? llama3 : ropeInvFreq({ hidden_size: headDim, num_attention_heads: 1, rope_theta: 10000 });
}

Deno.test("rope: forward and backward match the float64 reference, in place or not", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  for (const c of cases) {
    for (const direction of ["forward", "backward"] as const) {
      const T = c.positions.length, n = T * c.nHeads * c.headDim;
      const invFreq = invFreqFor(c.headDim);
      using positions = backend.fromHost(c.positions, [T], "i32");
      using inv = backend.fromHost(invFreq, [invFreq.length], "f32");
      const x = upload(backend, rng.normals(n), c.dtype);
      using separate = poisoned(backend, n, c.dtype);
      const y = c.inPlace ? x.t : separate;
      const op = direction === "forward" ? ropeForward : ropeBackward;
      op(backend, x.t, y, { positions, invFreq: inv }, c.nHeads);
      const want = ropeRef(x.host, c.positions, invFreq, c.nHeads, direction === "backward");
      const tol = c.dtype === "f32" ? 1e-5 : 1e-2;
      assertClose(download(y), want, tol, `${direction} T=${T} ${c.nHeads}x${c.headDim} ${c.dtype} seed ${rng.seed}`);
      x.t.free();
    }
  }
});

Deno.test("rope: the backward undoes the forward and is its adjoint", async () => {
  using backend = await openBackend("cpu");
  const rng = new Rng();
  const positions = positionsFromCuSeqlens(cuSeqlensOf([40, 3]));
  const n = positions.length * 2 * 64;
  using pos = backend.fromHost(positions, [positions.length], "i32");
  using inv = backend.fromHost(llama3, [32], "f32");
  const x = rng.normals(n), g = rng.normals(n);
  using xt = backend.fromHost(x, [n], "f32");
  using y = backend.empty([n], "f32");
  ropeForward(backend, xt, y, { positions: pos, invFreq: inv }, 2);
  using gt = backend.fromHost(g, [n], "f32");
  using dx = backend.empty([n], "f32");
  ropeBackward(backend, gt, dx, { positions: pos, invFreq: inv }, 2);
  // <R x, g> = <x, R^T g>: the backward is the transpose (the exact derivative of a linear map).
  assertClose([dot(y.toHost(), g)], [dot(x, dx.toHost())], 1e-5, `adjoint, seed ${rng.seed}`);
  ropeBackward(backend, y, y, { positions: pos, invFreq: inv }, 2);
  assertClose(y.toHost(), x, 1e-5, `round trip, seed ${rng.seed}`);
});

Deno.test("rope: the reference backward equals finite differences of the reference forward", () => {
  const rng = new Rng();
  const positions = new Int32Array([0, 1, 7]), invFreq = invFreqFor(8);
  const x = rng.normals(3 * 2 * 8), g = rng.normals(3 * 2 * 8);
  const numeric = numericGradient((xs) => dot(ropeRef(xs, positions, invFreq, 2), g), x);
  assertClose(ropeRef(g, positions, invFreq, 2, true), numeric, 1e-8, `seed ${rng.seed}`);
});

Deno.test("rope: a negative position fails with a message that names it", async () => {
  using backend = await openBackend("cpu");
  using positions = backend.fromHost(new Int32Array([0, -1]), [2], "i32");
  using inv = backend.fromHost(new Float32Array(4), [4], "f32");
  using x = backend.filled([2, 8], "f32");
  assert.throws(() => ropeForward(backend, x, x, { positions, invFreq: inv }, 1), /positions\[1\] = -1 is negative/);
});
