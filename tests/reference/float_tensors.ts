/**
 * Moving test values to and from f32 / bf16 device tensors: the host copy a
 * reference should use is the value as stored (bf16 rounds), and outputs
 * start poisoned with NaN so unwritten elements show.
 *
 * @module
 */

import type { Backend } from "../../lib/backend/backend.ts";
import { fromBf16, toBf16 } from "../../lib/backend/dtype.ts";
import type { Tensor } from "../../lib/backend/tensor.ts";
import { poison, poisonBf16 } from "./compare.ts";

/** An f32 or bf16 device tensor. */
export type FloatTensor = Tensor<"f32" | "bf16">;

/** A device tensor of `values` stored as dtype, and the stored values as f32. */
export function upload(
  backend: Backend,
  values: Float32Array,
  dtype: "f32" | "bf16",
  shape: readonly number[] = [values.length],
): { host: Float32Array; t: FloatTensor } {
  if (dtype === "f32") return { host: values, t: backend.fromHost(values, shape, "f32") };
  const bits = toBf16(values);
  return { host: fromBf16(bits), t: backend.fromHost(bits, shape, "bf16") };
}

/** A tensor's values as f32. */
export function download(t: FloatTensor): Float32Array {
  return t.dtype === "f32" ? (t.toHost() as Float32Array) : fromBf16(t.toHost() as Uint16Array);
}

/** A tensor of n NaNs in dtype. */
export function poisoned(backend: Backend, n: number, dtype: "f32" | "bf16"): FloatTensor {
  return dtype === "f32" ? backend.fromHost(poison(n), [n], "f32") : backend.fromHost(poisonBf16(n), [n], "bf16");
}

/** Runs fn with LORAC_CPU_ISA set to isa ("" = the CPU's best), restoring it after. */
export function withIsa<T>(isa: string, fn: () => T): T {
  const before = Deno.env.get("LORAC_CPU_ISA");
  if (isa) Deno.env.set("LORAC_CPU_ISA", isa);
  else Deno.env.delete("LORAC_CPU_ISA");
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("LORAC_CPU_ISA");
    else Deno.env.set("LORAC_CPU_ISA", before);
  }
}
