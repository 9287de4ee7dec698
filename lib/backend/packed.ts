/**
 * Packed batches: sequences of unequal lengths laid end to end with no
 * padding, described by cu_seqlens offsets, with RoPE positions that restart
 * at 0 for every sequence (the layout of cuda/lorac.h's transformer ops).
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import type { Tensor } from "./tensor.ts";

/**
 * cu_seqlens for sequences of the given lengths: [0, l0, l0 + l1, ...].
 *
 * @example
 * ```ts
 * import { cuSeqlensOf } from "./packed.ts";
 * cuSeqlensOf([3, 1, 2]); // Int32Array [0, 3, 4, 6]
 * ```
 */
export function cuSeqlensOf(lengths: readonly number[]): Int32Array {
  const cu = new Int32Array(lengths.length + 1);
  lengths.forEach((len, s) => {
    if (!Number.isInteger(len) || len < 0) {
      throw new RangeError(`sequence ${s} has length ${len}: need an integer >= 0`);
    }
    cu[s + 1] = cu[s] + len;
  });
  return cu;
}

/**
 * Positions of every packed token: 0, 1, ... restarting at each sequence.
 *
 * @example
 * ```ts
 * import { positionsFromCuSeqlens } from "./packed.ts";
 * positionsFromCuSeqlens(new Int32Array([0, 3, 4, 6])); // Int32Array [0, 1, 2, 0, 0, 1]
 * ```
 */
export function positionsFromCuSeqlens(cuSeqlens: Int32Array): Int32Array {
  const T = cuSeqlens[cuSeqlens.length - 1] ?? 0;
  const positions = new Int32Array(T);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    for (let t = cuSeqlens[s]; t < cuSeqlens[s + 1]; t++) positions[t] = t - cuSeqlens[s];
  }
  return positions;
}

/**
 * A packed batch on a backend: host lengths plus device cu_seqlens and
 * positions, freed together.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { PackedBatch } from "./packed.ts";
 * using backend = await openBackend("cpu");
 * using batch = PackedBatch.fromLengths(backend, [3, 1, 2]);
 * [batch.T, batch.maxSeqlen]; // [6, 3]
 * batch.positions.toHost(); // Int32Array [0, 1, 2, 0, 0, 1]
 * ```
 */
export class PackedBatch implements Disposable {
  /** Length of each sequence. */
  readonly lengths: readonly number[];
  /** Host copy of the offsets, numSeqs + 1 entries. */
  readonly cuSeqlensHost: Int32Array;
  /** Device offsets (int32 [numSeqs + 1]). */
  readonly cuSeqlens: Tensor<"i32">;
  /** Device positions (int32 [T]). */
  readonly positions: Tensor<"i32">;

  private constructor(lengths: readonly number[], cu: Int32Array, cuSeqlens: Tensor<"i32">, positions: Tensor<"i32">) {
    this.lengths = lengths;
    this.cuSeqlensHost = cu;
    this.cuSeqlens = cuSeqlens;
    this.positions = positions;
  }

  /** Uploads the layout of sequences with these lengths (at least one). */
  static fromLengths(backend: Backend, lengths: readonly number[]): PackedBatch {
    if (lengths.length === 0) throw new RangeError("a packed batch needs at least one sequence");
    const cu = cuSeqlensOf(lengths);
    const cuSeqlens = backend.fromHost(cu, [cu.length], "i32");
    const T = cu[cu.length - 1];
    // Only empty sequences: nothing to upload (a zero-byte copy has no host pointer).
    const positions = T ? backend.fromHost(positionsFromCuSeqlens(cu), [T], "i32") : backend.empty([0], "i32");
    return new PackedBatch([...lengths], cu, cuSeqlens, positions);
  }

  /** Number of sequences. */
  get numSeqs(): number {
    return this.lengths.length;
  }

  /** Tokens in all. */
  get T(): number {
    return this.cuSeqlensHost[this.lengths.length];
  }

  /** The longest sequence. */
  get maxSeqlen(): number {
    return Math.max(...this.lengths);
  }

  /** Frees the device tensors. */
  [Symbol.dispose](): void {
    this.cuSeqlens.free();
    this.positions.free();
  }
}
