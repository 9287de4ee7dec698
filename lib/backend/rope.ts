/**
 * RoPE with HF's rotate_half pairing on [T, heads, headDim] activations:
 * element i turns with element i + headDim/2 by positions[t] · invFreq[i].
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import { expectNumel, sameDtype } from "./op_checks.ts";
import type { Tensor } from "./tensor.ts";

/** Where the angles come from: positions [T] (int32) and invFreq [headDim/2] (f32). */
export interface RopeAngles {
  /** Position of every token (restarting at 0 per packed sequence). */
  positions: Tensor<"i32">;
  /** Inverse frequencies from the model config (see rope_freqs.ts). */
  invFreq: Tensor<"f32">;
}

function rope(
  backend: Backend,
  name: "lorac_rope_forward" | "lorac_rope_backward",
  src: FloatTensor,
  dst: FloatTensor,
  angles: RopeAngles,
  nHeads: number,
): void {
  const T = angles.positions.numel;
  const headDim = angles.invFreq.numel * 2;
  expectNumel(src, T * nHeads * headDim, "x");
  expectNumel(dst, T * nHeads * headDim, "y");
  const dtype = sameDtype({ x: src, y: dst });
  backend.check(
    backend.lib.symbols[name](
      backend.ctx,
      T,
      nHeads,
      headDim,
      angles.positions.ptr,
      angles.invFreq.ptr,
      src.ptr,
      dst.ptr,
      dtypeCode[dtype],
    ),
  );
}

/**
 * y = RoPE(x) for x [T, nHeads, headDim]; y may be x (in place).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { ropeForward } from "./rope.ts";
 * using backend = await openBackend("cpu");
 * using positions = backend.fromHost(new Int32Array([1]), [1], "i32");
 * using invFreq = backend.fromHost(new Float32Array([Math.PI / 2]), [1], "f32");
 * using x = backend.fromHost(new Float32Array([1, 0]), [1, 1, 2], "f32");
 * ropeForward(backend, x, x, { positions, invFreq }, 1);
 * x.toHost(); // ≈ Float32Array [0, 1]: a quarter turn
 * ```
 */
export function ropeForward(
  backend: Backend,
  x: FloatTensor,
  y: FloatTensor,
  angles: RopeAngles,
  nHeads: number,
): void {
  rope(backend, "lorac_rope_forward", x, y, angles, nHeads);
}

/**
 * dx = RoPE⁻¹(dy), the gradient of {@link ropeForward}; dx may be dy.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { ropeBackward } from "./rope.ts";
 * using backend = await openBackend("cpu");
 * using positions = backend.fromHost(new Int32Array([1]), [1], "i32");
 * using invFreq = backend.fromHost(new Float32Array([Math.PI / 2]), [1], "f32");
 * using dy = backend.fromHost(new Float32Array([0, 1]), [1, 1, 2], "f32");
 * ropeBackward(backend, dy, dy, { positions, invFreq }, 1);
 * dy.toHost(); // ≈ Float32Array [1, 0]
 * ```
 */
export function ropeBackward(
  backend: Backend,
  dy: FloatTensor,
  dx: FloatTensor,
  angles: RopeAngles,
  nHeads: number,
): void {
  rope(backend, "lorac_rope_backward", dy, dx, angles, nHeads);
}
