// Our TensorBoard event files read back by tensorboard's own RawEventFileLoader (CRC-checked) and
// decoded with its Event protobuf: the header record, every step and every scalar.
import assert from "node:assert/strict";
import { TensorBoardWriter } from "../../lib/train/tensorboard.ts";
import { Rng } from "../reference/random.ts";
import { runOracle } from "./harness.ts";

Deno.test("oracle: tensorboard reads our event file: file_version, steps, wall times and scalars", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  let clock = 1.7e9 + rng.next();
  const steps = Array.from({ length: 25 }, (_, i) => ({
    step: i === 24 ? 2 ** 40 : i + 1,
    scalars: {
      "train/loss": rng.uniform(0, 8),
      "train/learning_rate": rng.uniform(0, 1e-3),
      "train/tokens_per_s": 1e5,
    },
  }));
  let path: string;
  {
    using tb = TensorBoardWriter.create(dir, () => (clock += 0.125));
    path = tb.path;
    for (const s of steps) tb.scalars(s.step, s.scalars);
  }
  const out = await runOracle("tensorboard_oracle.py", { path }, {});
  const events = out.params.events as {
    wall_time: number;
    step: number;
    file_version: string;
    scalars: Record<string, number>;
  }[];
  assert.equal(events.length, 1 + steps.length, `seed ${rng.seed}`);
  assert.equal(events[0].file_version, "brain.Event:2");
  steps.forEach((s, i) => {
    const e = events[i + 1];
    assert.equal(e.step, s.step, `seed ${rng.seed}`);
    assert.equal(e.wall_time, events[0].wall_time + 0.125 * (i + 1), `seed ${rng.seed}`);
    for (const [tag, v] of Object.entries(s.scalars)) {
      assert.equal(e.scalars[tag], Math.fround(v), `${tag} (seed ${rng.seed})`);
    }
  });
});
