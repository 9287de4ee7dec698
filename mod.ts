/**
 * lorac: instruction-tunes a Llama-family LLM to classify texts, with LoRA
 * adapters on a frozen 4-bit NF4 base and its own CPU and CUDA kernels.
 *
 * This module is the public API. Today it exposes the native kernel layer:
 * open a backend, move tensors, and run the NF4, LoRA, GEMM and AdamW ops.
 *
 * @example
 * ```ts
 * import { openBackend, nf4Quantize, nf4Gemm } from "@lorac/lorac";
 * using backend = await openBackend("auto");
 * using w = backend.fromHost(new Float32Array(64 * 64).fill(0.25), [64, 64], "f32");
 * using q = nf4Quantize(backend, w);
 * using x = backend.fromHost(new Float32Array(64).fill(1), [1, 64], "f32");
 * using y = backend.empty([1, 64], "f32");
 * nf4Gemm(backend, x, q, y);
 * ```
 *
 * @module
 */

export { Backend, type BackendOptions, type DeviceChoice, KernelError, openBackend } from "./lib/backend/backend.ts";
export { byteSize, type DType, fromBf16, toBf16 } from "./lib/backend/dtype.ts";
export { type HostArray, Tensor } from "./lib/backend/tensor.ts";
export { LibraryError, loadLibrary } from "./lib/backend/loader.ts";
export {
  nf4Dequantize,
  type Nf4DoubleAbsmax,
  nf4DoubleDequantize,
  nf4DoubleQuantize,
  nf4Quantize,
  type Nf4Weight,
} from "./lib/backend/nf4.ts";
export { type FloatTensor, gemm, type GemmOptions, nf4Gemm, nf4GemmDx } from "./lib/backend/gemm.ts";
export { type LoraAdapter, loraBackward, loraForward, loraScale } from "./lib/backend/lora.ts";
export { type AdamWConfig, AdamWState } from "./lib/backend/adamw.ts";
