/**
 * Runs the Python reference stack (torch, bitsandbytes, PEFT) beside our
 * kernels: inputs go to a temporary folder as raw little-endian files plus a
 * JSON manifest, a script of tests/oracle/ computes the reference with the
 * interpreter of .oracle-venv/ (made by tests/oracle/setup.sh) or
 * $LORAC_ORACLE_PYTHON, and its outputs come back the same way
 * (oracle_io.py is the Python side of the exchange).
 *
 * @module
 */

/** Element types the exchange carries; bf16 travels as its raw 16-bit pattern. */
export type OracleDType = "f32" | "f64" | "bf16" | "u8" | "i32";

/** The host array that holds each exchange dtype. */
export type OracleData<D extends OracleDType> = D extends "f32" ? Float32Array
  : D extends "f64" ? Float64Array
  : D extends "bf16" ? Uint16Array
  : D extends "i32" ? Int32Array
  : Uint8Array;

/** One tensor crossing to or from Python. */
export interface OracleArray<D extends OracleDType = OracleDType> {
  /** Element type. */
  dtype: D;
  /** Dimensions, outermost first. */
  shape: readonly number[];
  /** The elements in row-major order. */
  data: OracleData<D>;
}

/** JSON-serialisable parameters for a script. */
export type OracleParams = Record<string, unknown>;

const oracleDir = new URL(".", import.meta.url);
const repoRoot = new URL("../../", import.meta.url);

/**
 * The interpreter with the reference stack: $LORAC_ORACLE_PYTHON, else
 * .oracle-venv/bin/python at the repository root.
 *
 * @example
 * ```ts
 * import { oraclePython } from "./harness.ts";
 * console.log(oraclePython());
 * ```
 */
export function oraclePython(): string {
  const override = Deno.env.get("LORAC_ORACLE_PYTHON");
  if (override) return override;
  const venvPython = new URL(".oracle-venv/bin/python", repoRoot).pathname;
  try {
    Deno.statSync(venvPython);
  } catch {
    throw new Error(
      `the oracle's Python is missing (${venvPython}): run \`deno task oracle\` or \`bash tests/oracle/setup.sh\` ` +
        "first, or set LORAC_ORACLE_PYTHON to an interpreter with torch, bitsandbytes and peft",
    );
  }
  return venvPython;
}

/**
 * Wraps a typed array as an exchange tensor.
 *
 * @example
 * ```ts
 * import { tensor } from "./harness.ts";
 * const t = tensor("f32", [2, 2], new Float32Array([1, 2, 3, 4]));
 * t.shape; // [2, 2]
 * ```
 */
export function tensor<D extends OracleDType>(dtype: D, shape: readonly number[], data: OracleData<D>): OracleArray<D> {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new RangeError(`tensor [${shape}] ${dtype} needs ${n} elements, got ${data.length}`);
  return { dtype, shape, data };
}

function view(dtype: OracleDType, bytes: Uint8Array): OracleData<OracleDType> {
  const buf = bytes.slice().buffer;
  switch (dtype) {
    case "f32":
      return new Float32Array(buf);
    case "f64":
      return new Float64Array(buf);
    case "bf16":
      return new Uint16Array(buf);
    case "i32":
      return new Int32Array(buf);
    case "u8":
      return new Uint8Array(buf);
  }
}

/** What a script wrote: its tensors by name and its JSON parameters. */
export class OracleOutputs {
  /** The script's tensors by name. */
  readonly tensors: ReadonlyMap<string, OracleArray>;
  /** The script's JSON parameters. */
  readonly params: OracleParams;

  /** Wraps what {@link runOracle} read back. */
  constructor(tensors: Map<string, OracleArray>, params: OracleParams) {
    this.tensors = tensors;
    this.params = params;
  }

  /** The output `name`, checked to have dtype `dtype`. */
  get<D extends OracleDType>(name: string, dtype: D): OracleData<D> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`the oracle wrote no output "${name}" (it wrote: ${[...this.tensors.keys()].join(", ")})`);
    if (t.dtype !== dtype) throw new Error(`oracle output "${name}" is ${t.dtype}, expected ${dtype}`);
    return t.data as OracleData<D>;
  }
}

// ATEN_CPU_CAPABILITY=avx2: on an AVX-512 CPU bitsandbytes 0.50.2 would register its native AVX-512
// dequantize_4bit, which has no reference to answer to; below AVX-512 it runs its reference code.
const ORACLE_ENV = { PYTHONDONTWRITEBYTECODE: "1", TRANSFORMERS_VERBOSITY: "error", ATEN_CPU_CAPABILITY: "avx2" };

let nf4Probe: Promise<{ ok: boolean; why: string }> | null = null;

/**
 * Whether this machine's bitsandbytes quantizes NF4 as bitsandbytes defines it (bnb_probe.py); on a CPU where
 * it does not (0.50.2 on an AVX-512 + AMX Xeon), the tests that take it as the NF4 reference are skipped with
 * `why` on the console, as they cannot judge lorac there.
 *
 * @example
 * ```ts ignore
 * import { bitsandbytesDefinesNf4 } from "./harness.ts";
 * const { ok } = await bitsandbytesDefinesNf4();
 * ```
 */
export function bitsandbytesDefinesNf4(): Promise<{ ok: boolean; why: string }> {
  nf4Probe ??= runOracle("bnb_probe.py", {}, {}).then(({ params }) => {
    const probe = params as { ok: boolean; why: string };
    if (!probe.ok) console.warn(`skipping the bitsandbytes NF4 comparisons: ${probe.why}`);
    return probe;
  });
  return nf4Probe;
}

/**
 * Runs tests/oracle/<script> on `inputs` and returns what it wrote.
 *
 * @example
 * ```ts ignore
 * import { runOracle, tensor } from "./harness.ts";
 * const out = await runOracle("nf4_oracle.py", { cases: [] }, { w: tensor("f32", [1], new Float32Array([1])) });
 * out.params;
 * ```
 */
export async function runOracle(
  script: string,
  params: OracleParams,
  inputs: Record<string, OracleArray>,
): Promise<OracleOutputs> {
  const python = oraclePython();
  const dir = await Deno.makeTempDir({ prefix: "lorac-oracle-" });
  try {
    const meta: Record<string, { dtype: OracleDType; shape: readonly number[] }> = {};
    for (const [name, t] of Object.entries(inputs)) {
      meta[name] = { dtype: t.dtype, shape: t.shape };
      await Deno.writeFile(`${dir}/${name}.bin`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify({ params, tensors: meta }));
    const scriptPath = new URL(script, oracleDir).pathname;
    const result = await new Deno.Command(python, {
      args: [scriptPath, dir],
      env: ORACLE_ENV,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      const err = new TextDecoder().decode(result.stderr).slice(-4000);
      throw new Error(`oracle script ${script} failed (exit ${result.code}) under ${python}:\n${err}`);
    }
    const out = JSON.parse(await Deno.readTextFile(`${dir}/out/manifest.json`)) as {
      params: OracleParams;
      tensors: Record<string, { dtype: OracleDType; shape: number[] }>;
    };
    const tensors = new Map<string, OracleArray>();
    for (const [name, m] of Object.entries(out.tensors)) {
      const data = view(m.dtype, await Deno.readFile(`${dir}/out/${name}.bin`));
      tensors.set(name, tensor(m.dtype, m.shape, data));
    }
    return new OracleOutputs(tensors, out.params);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The first index where two arrays differ (NaN-aware, exact), or -1.
 *
 * @example
 * ```ts
 * import { firstDifference } from "./harness.ts";
 * firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 3])); // 1
 * ```
 */
export function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Math.min(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) return i;
  }
  return -1;
}

/**
 * Throws unless got and want are identical element for element, naming the
 * first difference and how many elements differ.
 *
 * @example
 * ```ts
 * import { assertIdentical } from "./harness.ts";
 * assertIdentical(new Float32Array([1, 2]), new Float32Array([1, 2]), "absmax");
 * ```
 */
export function assertIdentical(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} elements, the reference has ${want.length}`);
  const i = firstDifference(got, want);
  if (i < 0) return;
  let count = 0;
  for (let j = i; j < got.length; j++) if (!Object.is(got[j], want[j])) count++;
  throw new Error(
    `${what}: ${count} of ${got.length} elements differ; first at [${i}]: ours ${got[i]}, reference ${want[i]}`,
  );
}
