// Our NF4 kernels against bitsandbytes 0.50.2 (quantize_4bit / dequantize_4bit on the CPU):
// the packed bytes, the absmax, the dequantized weight and the double quantization must be
// identical, bit for bit, on random weights of odd shapes, every blocksize, f32 and bf16.
import { openBackend } from "../../lib/backend/backend.ts";
import { fromBf16, toBf16 } from "../../lib/backend/dtype.ts";
import { nf4Dequantize, nf4DoubleDequantize, nf4DoubleQuantize, nf4Quantize } from "../../lib/backend/nf4.ts";
import { NF4_CODE } from "../reference/nf4.ts";
import { Rng } from "../reference/random.ts";
import {
  assertIdentical,
  bitsandbytesDefinesNf4,
  type OracleArray,
  type OracleOutputs,
  runOracle,
  tensor,
} from "./harness.ts";

interface Nf4Case {
  name: string;
  shape: [number, number];
  blocksize: number;
  dtype: "f32" | "bf16";
  /** The weight's values (rounded to bf16 for bf16 cases). */
  values: Float32Array;
}

const rng = new Rng();

/** Normal weights whose rows differ in scale by up to e^±3, so block absmax values spread widely. */
function weights(rows: number, cols: number): Float32Array {
  const w = rng.normals(rows * cols, 0.02);
  for (let r = 0; r < rows; r++) {
    const s = Math.exp(rng.uniform(-3, 3));
    for (let c = 0; c < cols; c++) w[r * cols + c] *= s;
  }
  return w;
}

/** One block (absmax 1) holding each fp32 midpoint between NF4 codes and its two neighbours. */
function tiesBlock(): Float32Array {
  const w = new Float32Array(64);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const nextAfter = (x: number, up: boolean): number => {
    f[0] = x;
    u[0] += (x > 0) === up ? 1 : -1;
    return f[0];
  };
  w[0] = 1;
  for (let i = 0; i < 15; i++) {
    // bitsandbytes' bounds: (code[i] + code[i+1]) / 2 in fp32.
    const mid = Math.fround(Math.fround(NF4_CODE[i] + NF4_CODE[i + 1]) / 2);
    w[1 + 3 * i] = mid;
    w[2 + 3 * i] = nextAfter(mid, true);
    w[3 + 3 * i] = nextAfter(mid, false);
  }
  return w;
}

function buildCases(): Nf4Case[] {
  const cases: Nf4Case[] = [];
  const shapes: [number, number][] = [[64, 64], [192, 576], [37, 128], [3, 50], [5, 7]];
  for (const shape of shapes) {
    for (const blocksize of [64, 128, 256, 4096]) {
      for (const dtype of ["f32", "bf16"] as const) {
        const w = weights(shape[0], shape[1]);
        const values = dtype === "bf16" ? fromBf16(toBf16(w)) : w;
        cases.push({ name: `w${shape.join("x")}_b${blocksize}_${dtype}`, shape, blocksize, dtype, values });
      }
    }
  }
  // A block of exact midpoints (ties go to the lower code) and an all-zero block (absmax 0).
  const special = new Float32Array(3 * 64);
  special.set(tiesBlock(), 0);
  special.set(weights(1, 64), 128);
  cases.push({ name: "ties_and_zero_block", shape: [3, 64], blocksize: 64, dtype: "f32", values: special });
  return cases;
}

function input(c: Nf4Case): OracleArray {
  return c.dtype === "f32" ? tensor("f32", c.shape, c.values) : tensor("bf16", c.shape, toBf16(c.values));
}

let oracle: Promise<{ cases: Nf4Case[]; out: OracleOutputs }> | undefined;

/** Runs bitsandbytes once for every case of this file. */
function reference(): Promise<{ cases: Nf4Case[]; out: OracleOutputs }> {
  oracle ??= (async () => {
    const cases = buildCases();
    const inputs: Record<string, OracleArray> = {};
    for (const c of cases) inputs[`${c.name}.w`] = input(c);
    const out = await runOracle("nf4_oracle.py", {
      cases: cases.map((c) => ({ name: c.name, blocksize: c.blocksize })),
    }, inputs);
    return { cases, out };
  })();
  return oracle;
}

const nf4Reference = await bitsandbytesDefinesNf4();

Deno.test({
  name: "oracle nf4: packed codes, absmax and dequantized weights equal bitsandbytes' bit for bit",
  ignore: !nf4Reference.ok,
}, async () => {
  const { cases, out } = await reference();
  using backend = await openBackend("cpu");
  for (const c of cases) {
    const what = `${c.name} (seed ${rng.seed})`;
    const data = input(c);
    using w = data.dtype === "f32"
      ? backend.fromHost(data.data as Float32Array, c.shape, "f32")
      : backend.fromHost(data.data as Uint16Array, c.shape, "bf16");
    using q = nf4Quantize(backend, w, c.blocksize);
    assertIdentical(q.packed.toHost(), out.get(`${c.name}.packed`, "u8"), `${what}: packed bytes`);
    assertIdentical(q.absmax.toHost(), out.get(`${c.name}.absmax`, "f32"), `${what}: absmax`);
    using deq = nf4Dequantize(backend, q, "f32");
    assertIdentical(deq.toHost(), out.get(`${c.name}.deq`, "f32"), `${what}: dequantized to f32`);
    if (c.dtype === "bf16") {
      using deq16 = nf4Dequantize(backend, q, "bf16");
      assertIdentical(deq16.toHost(), out.get(`${c.name}.deq_native`, "bf16"), `${what}: dequantized to bf16`);
    }
  }
});

Deno.test({
  name: "oracle nf4: double quantization of the absmax equals bitsandbytes' compress_statistics",
  ignore: !nf4Reference.ok,
}, async () => {
  const { cases, out } = await reference();
  using backend = await openBackend("cpu");
  for (const c of cases) {
    const what = `${c.name} (seed ${rng.seed})`;
    // bitsandbytes' own absmax goes in, so this checks the double quantization alone.
    const absmax = out.get(`${c.name}.absmax`, "f32");
    using am = backend.fromHost(absmax, [absmax.length], "f32");
    using dq = nf4DoubleQuantize(backend, am);
    assertIdentical(dq.offset.toHost(), out.get(`${c.name}.offset`, "f32"), `${what}: offset (mean absmax)`);
    assertIdentical(dq.qabsmax.toHost(), out.get(`${c.name}.qabsmax`, "u8"), `${what}: 8-bit absmax codes`);
    assertIdentical(dq.absmax2.toHost(), out.get(`${c.name}.absmax2`, "f32"), `${what}: absmax2`);
    using back = nf4DoubleDequantize(backend, dq);
    assertIdentical(back.toHost(), out.get(`${c.name}.absmax_dq`, "f32"), `${what}: double-dequantized absmax`);
  }
});
