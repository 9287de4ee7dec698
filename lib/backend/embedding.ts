/**
 * Embedding gather from a frozen f32 or bf16 table.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { dtypeCode } from "./dtype.ts";
import type { FloatTensor } from "./gemm.ts";
import type { Tensor } from "./tensor.ts";

/**
 * out[i, :] = table[ids[i], :], table [vocab, dim], out [n, dim].
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { embedding } from "./embedding.ts";
 * using backend = await openBackend("cpu");
 * using table = backend.fromHost(new Float32Array([0, 0, 1, 1, 2, 2]), [3, 2], "f32");
 * using ids = backend.fromHost(new Int32Array([2, 0]), [2], "i32");
 * using out = backend.empty([2, 2], "f32");
 * embedding(backend, ids, table, out);
 * out.toHost(); // Float32Array [2, 2, 0, 0]
 * ```
 */
export function embedding(backend: Backend, ids: Tensor<"i32">, table: FloatTensor, out: FloatTensor): void {
  if (table.shape.length !== 2) throw new RangeError(`the embedding table must be [vocab, dim], got [${table.shape}]`);
  const [vocab, dim] = table.shape;
  const n = ids.numel;
  if (out.numel !== n * dim) throw new RangeError(`out must be [${n}, ${dim}], got [${out.shape}]`);
  backend.check(
    backend.lib.symbols.lorac_embedding(
      backend.ctx,
      n,
      ids.ptr,
      table.ptr,
      dtypeCode[table.dtype],
      vocab,
      dim,
      out.ptr,
      dtypeCode[out.dtype],
    ),
  );
}
