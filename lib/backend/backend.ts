/**
 * A Backend is one kernel library plus one context on one device: it
 * allocates tensors, copies them, and turns a non-zero status from the
 * library into a thrown KernelError carrying the library's message.
 *
 * @module
 */

import type { LibraryKind } from "../../cuda/build.ts";
import { byteSize, type DType, dtypeCode } from "./dtype.ts";
import { LibraryError, loadLibrary } from "./loader.ts";
import type { KernelLibrary } from "./symbols.ts";
import { type HostArray, Tensor } from "./tensor.ts";

/** Which device to run on: `auto` picks CUDA when a GPU answers, else the CPU. */
export type DeviceChoice = "auto" | "cpu" | "cuda";

/** A non-zero status returned by a native call, with the library's message. */
export class KernelError extends Error {
  /** The lorac_status code. */
  readonly status: number;
  /** Creates the error. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "KernelError";
    this.status = status;
  }
}

/** Options for {@link openBackend}. */
export interface BackendOptions {
  /** GPU index for CUDA (default 0). */
  deviceIndex?: number;
  /** CPU threads (default: all cores). */
  numThreads?: number;
  /**
   * The dtype the NF4 base GEMMs multiply in (default: f32 on the CPU, bf16 on CUDA, which has only bf16).
   * "bf16" rounds both operands to bf16 as bitsandbytes' bf16 compute does and sums in f32, on CPUs with
   * AMX or AVX512-BF16 (several times faster than f32 with AMX); CPUs without either compute in f32.
   */
  computeDtype?: ComputeDType;
}

/** What {@link BackendOptions.computeDtype} takes. */
export type ComputeDType = "f32" | "bf16";

/** The compute dtypes, for option parsing. */
export const COMPUTE_DTYPES: readonly ComputeDType[] = ["f32", "bf16"];

function readCString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

function hostArray<D extends DType>(dtype: D, bytes: ArrayBuffer, n: number): HostArray<D> {
  switch (dtype) {
    case "f32":
      return new Float32Array(bytes, 0, n) as HostArray<D>;
    case "bf16":
      return new Uint16Array(bytes, 0, n) as HostArray<D>;
    case "i32":
      return new Int32Array(bytes, 0, n) as HostArray<D>;
    default:
      return new Uint8Array(bytes) as HostArray<D>;
  }
}

/** One context of a kernel library on one device. */
export class Backend implements Disposable {
  /** Which build runs the kernels. */
  readonly kind: LibraryKind;
  /** What the NF4 base GEMMs multiply in: as asked, else the device's default. */
  readonly computeDtype: ComputeDType;
  /** The library handle (symbols of cuda/lorac.h). */
  readonly lib: KernelLibrary;
  #ctx: Deno.PointerObject | null;

  private constructor(kind: LibraryKind, lib: KernelLibrary, ctx: Deno.PointerObject, computeDtype: ComputeDType) {
    this.kind = kind;
    this.computeDtype = computeDtype;
    this.lib = lib;
    this.#ctx = ctx;
  }

  /** Creates a context on an opened library; use {@link openBackend}. */
  static create(kind: LibraryKind, lib: KernelLibrary, options: BackendOptions = {}): Backend {
    const out = new BigUint64Array(1);
    const status = lib.symbols.lorac_ctx_create(options.deviceIndex ?? 0, options.numThreads ?? 0, out);
    if (status !== 0) throw new KernelError(status, readCString(lib.symbols.lorac_last_error(null)));
    const computeDtype = options.computeDtype ?? (kind === "cuda" ? "bf16" : "f32");
    const backend = new Backend(kind, lib, Deno.UnsafePointer.create(out[0])!, computeDtype);
    if (options.computeDtype !== undefined) {
      try {
        backend.check(lib.symbols.lorac_set_compute_dtype(backend.ctx, dtypeCode[options.computeDtype]));
      } catch (e) {
        backend.close();
        throw e;
      }
    }
    return backend;
  }

  /** The context pointer passed to every native call. */
  get ctx(): Deno.PointerObject {
    if (this.#ctx === null) throw new Error(`the ${this.kind} backend is closed`);
    return this.#ctx;
  }

  /** Throws a KernelError with the library's message when status is not 0. */
  check(status: number): void {
    if (status !== 0) throw new KernelError(status, readCString(this.lib.symbols.lorac_last_error(this.ctx)));
  }

  /** A one-line description of the device and kernel path. */
  get deviceName(): string {
    const buf = new Uint8Array(256);
    this.check(this.lib.symbols.lorac_device_name(this.ctx, buf, buf.length));
    return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
  }

  /** Allocations made on this context and not yet freed. */
  liveAllocations(): number {
    const out = new BigInt64Array(1);
    this.check(this.lib.symbols.lorac_live_allocations(this.ctx, out));
    return Number(out[0]);
  }

  /** An uninitialised tensor. */
  empty<D extends DType>(shape: readonly number[], dtype: D): Tensor<D> {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new BigUint64Array(1);
    this.check(this.lib.symbols.lorac_alloc(this.ctx, BigInt(byteSize(dtype, n)), out));
    return new Tensor(this, Deno.UnsafePointer.create(out[0])!, shape, dtype);
  }

  /** A tensor with every byte set to `byteValue` (0 gives zeros). */
  filled<D extends DType>(shape: readonly number[], dtype: D, byteValue = 0): Tensor<D> {
    const t = this.empty(shape, dtype);
    this.check(this.lib.symbols.lorac_memset(this.ctx, t.ptr, byteValue, BigInt(t.bytes)));
    return t;
  }

  /** A tensor holding a copy of host data (raw elements of `dtype`). */
  fromHost<D extends DType>(data: HostArray<D>, shape: readonly number[], dtype: D): Tensor<D> {
    const t = this.empty(shape, dtype);
    if (data.byteLength !== t.bytes) {
      t.free();
      throw new RangeError(`fromHost: ${data.byteLength} bytes given for [${shape}] ${dtype} (${t.bytes} bytes)`);
    }
    this.write(t, data);
    return t;
  }

  /** Overwrites a tensor with host data of the same byte size. */
  write<D extends DType>(tensor: Tensor<D>, data: HostArray<D>): void {
    if (data.byteLength !== tensor.bytes) {
      throw new RangeError(`write: ${data.byteLength} bytes given for a ${tensor.bytes}-byte tensor`);
    }
    if (tensor.bytes === 0) return; // Deno passes an empty buffer as NULL.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.check(this.lib.symbols.lorac_copy_h2d(this.ctx, tensor.ptr, bytes, BigInt(tensor.bytes)));
  }

  /** Copies a tensor's bytes to a new host array (waits for queued work). */
  toHost<D extends DType>(tensor: Tensor<D>): HostArray<D> {
    const bytes = new ArrayBuffer(tensor.bytes);
    if (tensor.bytes === 0) return hostArray(tensor.dtype, bytes, 0);
    this.check(this.lib.symbols.lorac_copy_d2h(this.ctx, new Uint8Array(bytes), tensor.ptr, BigInt(tensor.bytes)));
    return hostArray(tensor.dtype, bytes, tensor.numel);
  }

  /** Copies src into dst (same byte size), on the device. */
  copy(dst: Tensor, src: Tensor): void {
    if (dst.bytes !== src.bytes) throw new RangeError(`copy: ${src.bytes} bytes into ${dst.bytes}`);
    this.check(this.lib.symbols.lorac_copy_d2d(this.ctx, dst.ptr, src.ptr, BigInt(src.bytes)));
  }

  /** A new tensor of `dtype` (f32 or bf16) converted from src. */
  convert<D extends "f32" | "bf16">(src: Tensor<"f32" | "bf16">, dtype: D): Tensor<D> {
    const out = this.empty(src.shape, dtype);
    this.check(this.lib.symbols.lorac_convert(
      this.ctx,
      src.ptr,
      dtypeCode[src.dtype],
      out.ptr,
      dtypeCode[dtype],
      BigInt(src.numel),
    ));
    return out;
  }

  /** Waits for all queued device work. */
  sync(): void {
    this.check(this.lib.symbols.lorac_sync(this.ctx));
  }

  /** Frees memory this backend allocated (used by Tensor.free). */
  freePointer(ptr: Deno.PointerObject): void {
    this.check(this.lib.symbols.lorac_free(this.ctx, ptr));
  }

  /** Destroys the context; tensors still alive must not be used afterwards. */
  close(): void {
    if (this.#ctx === null) return;
    this.lib.symbols.lorac_ctx_destroy(this.#ctx);
    this.#ctx = null;
  }

  /** `using` support: closes the context. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Whether the NVIDIA driver library can be opened, checked before any CUDA build. */
function cudaDriverPresent(): boolean {
  try {
    Deno.dlopen("libcuda.so.1", {}).close();
    return true;
  } catch {
    return false;
  }
}

/** Why CUDA cannot be used here, or null when a GPU answers. */
async function cudaUnavailable(): Promise<string | null> {
  if (!cudaDriverPresent()) return "driver: libcuda.so.1 (the NVIDIA driver) is not installed";
  let lib: KernelLibrary;
  try {
    lib = await loadLibrary("cuda");
  } catch (e) {
    return `library: ${(e as Error).message}`;
  }
  const count = new Int32Array(1);
  if (lib.symbols.lorac_device_count(count) !== 0) {
    return readCString(lib.symbols.lorac_last_error(null));
  }
  return count[0] > 0 ? null : "device: the CUDA driver reports no GPU";
}

/**
 * Opens a backend: `cpu`, `cuda` (an error saying whether the library, the
 * driver or the device is missing) or `auto` (CUDA when a GPU answers).
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * using backend = await openBackend("auto");
 * console.log(backend.kind, backend.deviceName);
 * ```
 */
export async function openBackend(device: DeviceChoice = "auto", options: BackendOptions = {}): Promise<Backend> {
  if (device === "cpu") return Backend.create("cpu", await loadLibrary("cpu"), options);
  const reason = await cudaUnavailable();
  if (reason === null) return Backend.create("cuda", await loadLibrary("cuda"), options);
  if (device === "cuda") {
    throw new LibraryError(`--device cuda: no usable GPU (${reason}); use --device cpu or auto`);
  }
  return Backend.create("cpu", await loadLibrary("cpu"), options);
}
