import assert from "node:assert/strict";
import { formatRate, TrainProgress } from "../lib/train/progress_line.ts";

/** A sink that records what is written; `terminal` picks redraw-in-place or log lines. */
function sink(terminal: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    writeSync: (p: Uint8Array) => (chunks.push(new TextDecoder().decode(p)), p.length),
    isTerminal: () => terminal,
  };
}

Deno.test("progress line: step, bar, loss, lr, tok/s and ETA", () => {
  let now = 0;
  const bar = new TrainProgress(100, { sink: sink(true), now: () => now });
  now = 10_000;
  bar.update({ step: 25, loss: 1.23456, learningRate: 2e-4, tokensPerSecond: 12345 });
  assert.equal(bar.line(), "step 25/100 |█████░░░░░░░░░░░░░░░| loss 1.2346 lr 2.00e-4 12.3k tok/s ETA 30s");
  assert.deepEqual([formatRate(950), formatRate(1500), formatRate(3.4e6)], ["950", "1.5k", "3.4M"]);
});

Deno.test("progress line: a log gets a line every twentieth of the run and messages; a terminal redraws", () => {
  const log = sink(false);
  const bar = new TrainProgress(40, { sink: log, now: () => 0 });
  for (let step = 1; step <= 40; step++) bar.update({ step, loss: 1, learningRate: 1e-4, tokensPerSecond: 10 });
  bar.message("step 40: eval loss 0.5");
  bar.finish();
  assert.equal(log.chunks.length, 21);
  assert.match(log.chunks[0], /^step 2\/40 .*\n$/);
  assert.equal(log.chunks[20], "step 40: eval loss 0.5\n");

  const tty = sink(true);
  let now = 0;
  const live = new TrainProgress(3, { sink: tty, now: () => now, intervalMs: 100 });
  live.update({ step: 1, loss: 1, learningRate: 1e-4, tokensPerSecond: 10 });
  live.update({ step: 2, loss: 1, learningRate: 1e-4, tokensPerSecond: 10 }); // within 100 ms: not drawn
  now = 50;
  live.update({ step: 3, loss: 1, learningRate: 1e-4, tokensPerSecond: 10 }); // the last step is always drawn
  live.finish();
  assert.equal(tty.chunks.length, 3);
  assert.ok(tty.chunks.every((c) => c.startsWith("\r")));
  assert.ok(tty.chunks[2].endsWith("\n"));
});
