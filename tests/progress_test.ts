import assert from "node:assert/strict";
import { formatBytes, formatDuration, Progress, type ProgressSink } from "../lib/ui/progress.ts";

/** A sink that records what is drawn, with a clock the test moves by hand. */
function fakeTerminal(terminal: boolean): { sink: ProgressSink; writes: string[]; clock: { ms: number } } {
  const writes: string[] = [];
  const sink: ProgressSink = {
    isTerminal: () => terminal,
    writeSync: (p) => (writes.push(new TextDecoder().decode(p)), p.length),
  };
  return { sink, writes, clock: { ms: 0 } };
}

Deno.test("progress: bytes and durations read as a person expects", () => {
  const bytes: [number, string][] = [[0, "0 B"], [999, "999 B"], [1000, "1.0 kB"], [1_234_567, "1.2 MB"], [
    5e12,
    "5.0 TB",
  ]];
  for (const [n, s] of bytes) assert.equal(formatBytes(n), s, `formatBytes(${n})`);
  const durations: [number, string][] = [[0, "0s"], [59.4, "59s"], [60, "1m00s"], [185, "3m05s"], [7620, "2h07m"]];
  for (const [n, s] of durations) assert.equal(formatDuration(n), s, `formatDuration(${n})`);
});

Deno.test("progress: the line shows percent, bar, bytes, rate and ETA; resumed bytes do not count toward the rate", () => {
  const cases = [
    { initial: 0, add: 250, seconds: 1, line: "f  25% |█████░░░░░░░░░░░░░░░| 250 B/1.0 kB 250 B/s ETA 3s" },
    { initial: 500, add: 100, seconds: 2, line: "f  60% |████████████░░░░░░░░| 600 B/1.0 kB 50 B/s ETA 8s" },
    { initial: 0, add: 1000, seconds: 4, line: "f 100% |████████████████████| 1.0 kB/1.0 kB 250 B/s" },
  ];
  for (const c of cases) {
    const { sink, clock } = fakeTerminal(false);
    const bar = new Progress("f", { total: 1000, initial: c.initial, sink, now: () => clock.ms });
    bar.add(c.add);
    assert.equal(bar.line(c.seconds * 1000), c.line);
  }
  const { sink } = fakeTerminal(false);
  assert.equal(new Progress("f", { sink, now: () => 0 }).line(0), "f 0 B 0 B/s", "no total: bytes and rate only");
});

Deno.test("progress: a terminal gets throttled redraws in place; a log gets one final line", () => {
  for (const terminal of [true, false]) {
    const { sink, writes, clock } = fakeTerminal(terminal);
    const bar = new Progress("model.safetensors", { total: 5000, sink, now: () => clock.ms, intervalMs: 100 });
    for (let i = 0; i < 50; i++) {
      clock.ms += 10;
      bar.add(100);
    }
    bar.finish();
    bar.finish(); // idempotent
    if (terminal) {
      // 500 ms of updates every 10 ms, redrawn at most every 100 ms, plus the final draw.
      assert.ok(writes.length >= 5 && writes.length <= 7, `${writes.length} redraws`);
      assert.ok(writes.every((w) => w.startsWith("\r") && w.includes("\x1b[K")));
      assert.ok(writes.at(-1)!.endsWith(" 5.0 kB/5.0 kB 10.0 kB/s\x1b[K\n"), JSON.stringify(writes.at(-1)));
    } else {
      assert.deepEqual(writes, ["model.safetensors: 5.0 kB in 1s (10.0 kB/s)\n"]);
    }
  }
});

Deno.test("progress: a narrow terminal shortens the label, not the numbers", () => {
  const { sink } = fakeTerminal(true);
  const bar = new Progress("model-00001-of-00004.safetensors", { total: 10, sink, now: () => 0, columns: 60 });
  const line = bar.line(1000);
  assert.ok(line.length <= 60, line);
  assert.match(line, /^…\S+ {3}0% \|░{20}\| 0 B\/10 B 0 B\/s$/);
});
