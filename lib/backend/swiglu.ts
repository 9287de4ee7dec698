/**
 * SwiGLU, the gate of the Llama MLP: out = silu(gate) · up, elementwise.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel, sameDtype } from "./op_checks.ts";

/**
 * out = silu(gate) · up (all the same size and dtype).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { swigluForward } from "./swiglu.ts";
 * using backend = await openBackend("cpu");
 * using gate = backend.fromHost(new Float32Array([0, 1]), [2], "f32");
 * using up = backend.fromHost(new Float32Array([5, 2]), [2], "f32");
 * using out = backend.empty([2], "f32");
 * swigluForward(backend, gate, up, out);
 * out.toHost(); // ≈ Float32Array [0, 1.4621]
 * ```
 */
export function swigluForward(backend: Backend, gate: FloatTensor, up: FloatTensor, out: FloatTensor): void {
  expectNumel(up, gate.numel, "up");
  expectNumel(out, gate.numel, "out");
  const dtype = sameDtype({ gate, up, out });
  backend.check(
    backend.lib.symbols.lorac_swiglu_forward(
      backend.ctx,
      BigInt(gate.numel),
      gate.ptr,
      up.ptr,
      out.ptr,
      dtypeCode[dtype],
    ),
  );
}

/**
 * dgate and dup from dout; dgate may be gate and dup may be up (in place).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { swigluBackward } from "./swiglu.ts";
 * using backend = await openBackend("cpu");
 * using gate = backend.fromHost(new Float32Array([0]), [1], "f32");
 * using up = backend.fromHost(new Float32Array([3]), [1], "f32");
 * using dout = backend.fromHost(new Float32Array([1]), [1], "f32");
 * using dgate = backend.empty([1], "f32");
 * using dup = backend.empty([1], "f32");
 * swigluBackward(backend, gate, up, dout, dgate, dup);
 * [dgate.toHost()[0], dup.toHost()[0]]; // [1.5, 0]: silu'(0) = 1/2, silu(0) = 0
 * ```
 */
export function swigluBackward(
  backend: Backend,
  gate: FloatTensor,
  up: FloatTensor,
  dout: FloatTensor,
  dgate: FloatTensor,
  dup: FloatTensor,
): void {
  for (const [name, t] of [["up", up], ["dout", dout], ["dgate", dgate], ["dup", dup]] as const) {
    expectNumel(t, gate.numel, name);
  }
  const dtype = sameDtype({ gate, up, dout, dgate, dup });
  backend.check(
    backend.lib.symbols.lorac_swiglu_backward(
      backend.ctx,
      BigInt(gate.numel),
      gate.ptr,
      up.ptr,
      dout.ptr,
      dgate.ptr,
      dup.ptr,
      dtypeCode[dtype],
    ),
  );
}
