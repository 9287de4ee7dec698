// Packed training batches (lib/model/batch.ts): offsets, loss rows (row p - 1 predicts token p) and
// targets, and the checks that refuse malformed batches with a message naming the problem.
import assert from "node:assert/strict";
import { checkBatch, packBatch } from "../lib/model/batch.ts";

Deno.test("batch: packBatch lays sequences end to end with loss on each completion token", () => {
  const cases = [
    {
      seqs: [{ tokens: [1, 5, 6, 2], completionStart: 2 }, { tokens: [1, 7, 2], completionStart: 2 }],
      cu: [0, 4, 7],
      rows: [1, 2, 5],
      targets: [6, 2, 2],
    },
    { seqs: [{ tokens: [4, 3], completionStart: 1 }], cu: [0, 2], rows: [0], targets: [3] },
    { seqs: [{ tokens: [9, 8, 7], completionStart: 3 }], cu: [0, 3], rows: [], targets: [] },
  ];
  for (const c of cases) {
    const b = packBatch(c.seqs);
    assert.deepEqual(Array.from(b.tokens), c.seqs.flatMap((s) => s.tokens));
    assert.deepEqual([Array.from(b.cuSeqlens), Array.from(b.lossRows), Array.from(b.targets)], [
      c.cu,
      c.rows,
      c.targets,
    ]);
    checkBatch(b, 10);
  }
  assert.throws(
    () => packBatch([{ tokens: [1, 2], completionStart: 0 }]),
    /completionStart 0 must be an integer in \[1, 2\]/,
  );
});

Deno.test("batch: checkBatch names what is wrong", () => {
  const good = packBatch([{ tokens: [1, 2, 3], completionStart: 1 }]);
  const bad = [
    [{ ...good, cuSeqlens: new Int32Array([0, 2]) }, /cuSeqlens must run from 0 to T = 3/],
    [{ ...good, targets: new Int32Array([1]) }, /2 loss rows but 1 targets/],
    [{ ...good, lossRows: new Int32Array([1, 1]) }, /loss row 1 \(entry 1\) is out of \[0, 3\) or repeated/],
    [
      { ...good, targets: new Int32Array([2, 10]) },
      /target 10 \(entry 1\) is not a token id below the vocabulary size 10/,
    ],
    [{ ...good, tokens: new Int32Array([1, -1, 3]) }, /token -1 at row 1 is not below the vocabulary size 10/],
  ] as const;
  for (const [batch, message] of bad) assert.throws(() => checkBatch(batch, 10), message);
});
