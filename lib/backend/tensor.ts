/**
 * A native tensor: a device pointer (host memory for the CPU build) with its
 * shape and dtype, owned by one Backend and freed explicitly or by `using`.
 *
 * @module
 */

import { byteSize, type DType } from "./dtype.ts";

/** The host array type that holds a dtype's raw elements. */
export type HostArray<D extends DType> = D extends "f32" ? Float32Array
  : D extends "bf16" ? Uint16Array
  : D extends "i32" ? Int32Array
  : Uint8Array;

/** What a Tensor needs from its owner to free and read itself. */
export interface TensorOwner {
  /** Releases memory allocated by this owner. */
  freePointer(ptr: Deno.PointerObject): void;
  /** Copies a tensor's bytes to a new host array. */
  toHost<D extends DType>(tensor: Tensor<D>): HostArray<D>;
}

/**
 * A block of device memory with a shape and dtype.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * using backend = await openBackend("cpu");
 * using t = backend.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2], "f32");
 * t.toHost(); // Float32Array [1, 2, 3, 4]
 * ```
 */
export class Tensor<D extends DType = DType> implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: D;
  /** Bytes of device memory the tensor spans. */
  readonly bytes: number;
  readonly #owner: TensorOwner;

  /** Wraps memory that `owner` allocated; use Backend.empty / fromHost instead. */
  constructor(owner: TensorOwner, ptr: Deno.PointerObject, shape: readonly number[], dtype: D) {
    this.#owner = owner;
    this.#ptr = ptr;
    this.shape = [...shape];
    this.dtype = dtype;
    this.bytes = byteSize(dtype, this.numel);
  }

  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** The device pointer; throws once the tensor is freed. */
  get ptr(): Deno.PointerObject {
    if (this.#ptr === null) throw new Error(`tensor [${this.shape}] ${this.dtype} used after free`);
    return this.#ptr;
  }

  /** True until free() runs. */
  get alive(): boolean {
    return this.#ptr !== null;
  }

  /** Copies the contents to a new host array. */
  toHost(): HostArray<D> {
    return this.#owner.toHost(this);
  }

  /** Frees the device memory; later calls do nothing. */
  free(): void {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    this.#owner.freePointer(ptr);
  }

  /** `using` support: frees the tensor. */
  [Symbol.dispose](): void {
    this.free();
  }
}
