import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/backend.ts";
import { cuSeqlensOf, PackedBatch, positionsFromCuSeqlens } from "../lib/backend/packed.ts";

Deno.test("packed: offsets and positions that restart at every sequence", () => {
  const cases: [number[], number[], number[]][] = [
    [[3, 1, 2], [0, 3, 4, 6], [0, 1, 2, 0, 0, 1]],
    [[2, 0, 1], [0, 2, 2, 3], [0, 1, 0]],
    [[1], [0, 1], [0]],
  ];
  for (const [lengths, cu, positions] of cases) {
    assert.deepEqual(cuSeqlensOf(lengths), Int32Array.from(cu), `${lengths}`);
    assert.deepEqual(positionsFromCuSeqlens(Int32Array.from(cu)), Int32Array.from(positions), `${lengths}`);
  }
  assert.throws(() => cuSeqlensOf([2, -1]), /sequence 1 has length -1/);
});

Deno.test("packed: a PackedBatch uploads its layout and frees it", async () => {
  using backend = await openBackend("cpu");
  const before = backend.liveAllocations();
  {
    using batch = PackedBatch.fromLengths(backend, [4, 2]);
    assert.deepEqual([batch.numSeqs, batch.T, batch.maxSeqlen], [2, 6, 4]);
    assert.deepEqual(batch.cuSeqlens.toHost(), new Int32Array([0, 4, 6]));
    assert.deepEqual(batch.positions.toHost(), new Int32Array([0, 1, 2, 3, 0, 1]));
  }
  assert.equal(backend.liveAllocations(), before);
  assert.throws(() => PackedBatch.fromLengths(backend, []), /at least one sequence/);
});
