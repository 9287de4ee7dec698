/**
 * NF4 weights in bitsandbytes' format: quantize, dequantize and the optional
 * double quantization of the per-block absmax.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";

/** A [rows, cols] weight in NF4: packed codes plus one fp32 absmax per block. */
export interface Nf4Weight extends Disposable {
  /** The codes, shape [rows, cols], two per byte, first element in the high nibble. */
  packed: Tensor<"nf4">;
  /** One absmax per `blocksize` consecutive elements, shape [ceil(rows*cols/blocksize)]. */
  absmax: Tensor<"f32">;
  /** Elements per absmax block (a power of two, 64..4096). */
  blocksize: number;
}

/** A double-quantized absmax: 8-bit codes, one fp32 scale per 256 codes, an offset. */
export interface Nf4DoubleAbsmax extends Disposable {
  /** One code of bitsandbytes' signed dynamic map per NF4 block. */
  qabsmax: Tensor<"u8">;
  /** One scale per 256 codes. */
  absmax2: Tensor<"f32">;
  /** The mean absmax subtracted before quantizing, shape [1]. */
  offset: Tensor<"f32">;
}

function assertBlocksize(blocksize: number): void {
  if (!Number.isInteger(Math.log2(blocksize)) || blocksize < 64 || blocksize > 4096) {
    throw new RangeError(`NF4 blocksize must be a power of two from 64 to 4096, got ${blocksize}`);
  }
}

/**
 * Quantizes a weight (f32 or bf16, any shape; row-major order) to NF4.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { nf4Quantize, nf4Dequantize } from "./nf4.ts";
 * using backend = await openBackend("cpu");
 * using w = backend.fromHost(new Float32Array(128).fill(0.5), [2, 64], "f32");
 * using q = nf4Quantize(backend, w);
 * using back = nf4Dequantize(backend, q, "f32");
 * back.toHost()[0]; // 0.5
 * ```
 */
export function nf4Quantize(backend: Backend, w: Tensor<"f32" | "bf16">, blocksize = 64): Nf4Weight {
  assertBlocksize(blocksize);
  const packed = backend.empty(w.shape, "nf4");
  const absmax = backend.empty([Math.ceil(w.numel / blocksize)], "f32");
  try {
    backend.check(backend.lib.symbols.lorac_nf4_quantize(
      backend.ctx,
      w.ptr,
      dtypeCode[w.dtype],
      BigInt(w.numel),
      blocksize,
      packed.ptr,
      absmax.ptr,
    ));
  } catch (e) {
    packed.free();
    absmax.free();
    throw e;
  }
  return nf4Weight(packed, absmax, blocksize);
}

/** Bundles packed codes and absmax into a disposable Nf4Weight. */
export function nf4Weight(packed: Tensor<"nf4">, absmax: Tensor<"f32">, blocksize: number): Nf4Weight {
  return {
    packed,
    absmax,
    blocksize,
    [Symbol.dispose]() {
      packed.free();
      absmax.free();
    },
  };
}

/** Dequantizes an NF4 weight to a new f32 or bf16 tensor of the same shape. */
export function nf4Dequantize<D extends "f32" | "bf16">(backend: Backend, q: Nf4Weight, dtype: D): Tensor<D> {
  const out = backend.empty(q.packed.shape, dtype);
  try {
    backend.check(backend.lib.symbols.lorac_nf4_dequantize(
      backend.ctx,
      q.packed.ptr,
      q.absmax.ptr,
      BigInt(q.packed.numel),
      q.blocksize,
      out.ptr,
      dtypeCode[dtype],
    ));
  } catch (e) {
    out.free();
    throw e;
  }
  return out;
}

/** Double-quantizes an absmax vector as bitsandbytes' compress_statistics. */
export function nf4DoubleQuantize(backend: Backend, absmax: Tensor<"f32">): Nf4DoubleAbsmax {
  const n = absmax.numel;
  const qabsmax = backend.empty([n], "u8");
  const absmax2 = backend.empty([Math.ceil(n / 256)], "f32");
  const offset = backend.empty([1], "f32");
  const result = {
    qabsmax,
    absmax2,
    offset,
    [Symbol.dispose]() {
      qabsmax.free();
      absmax2.free();
      offset.free();
    },
  };
  try {
    backend.check(backend.lib.symbols.lorac_nf4_double_quantize(
      backend.ctx,
      absmax.ptr,
      BigInt(n),
      qabsmax.ptr,
      absmax2.ptr,
      offset.ptr,
    ));
  } catch (e) {
    result[Symbol.dispose]();
    throw e;
  }
  return result;
}

/** Recovers the fp32 absmax from its double quantization. */
export function nf4DoubleDequantize(backend: Backend, dq: Nf4DoubleAbsmax): Tensor<"f32"> {
  const n = dq.qabsmax.numel;
  const out = backend.empty([n], "f32");
  try {
    backend.check(backend.lib.symbols.lorac_nf4_double_dequantize(
      backend.ctx,
      dq.qabsmax.ptr,
      dq.absmax2.ptr,
      dq.offset.ptr,
      BigInt(n),
      out.ptr,
    ));
  } catch (e) {
    out.free();
    throw e;
  }
  return out;
}
