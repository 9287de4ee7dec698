import assert from "node:assert/strict";
import { learningRate, type SchedulerType, warmupStepsOf } from "../lib/train/schedule.ts";

// The rates torch's LambdaLR gives under transformers 5.24's get_*_schedule_with_warmup (peak 2e-4), printed by
// Python's repr: optimizer step 0, 1, ..., totalSteps.
const cases: { type: SchedulerType; warmup: number; total: number; want: number[] }[] = [
  {
    type: "linear",
    warmup: 3,
    total: 10,
    want: [
      0.0,
      6.666666666666667e-05,
      0.00013333333333333334,
      0.0002,
      0.00017142857142857143,
      0.00014285714285714287,
      0.00011428571428571428,
      8.571428571428571e-05,
      5.714285714285714e-05,
      2.857142857142857e-05,
      0.0,
    ],
  },
  {
    type: "cosine",
    warmup: 3,
    total: 10,
    want: [
      0.0,
      6.666666666666667e-05,
      0.00013333333333333334,
      0.0002,
      0.0001900968867902419,
      0.00016234898018587337,
      0.00012225209339563145,
      7.774790660436858e-05,
      3.7651019814126654e-05,
      9.903113209758096e-06,
      0.0,
    ],
  },
  {
    type: "linear",
    warmup: 0,
    total: 7,
    want: [
      0.0002,
      0.00017142857142857143,
      0.00014285714285714287,
      0.00011428571428571428,
      8.571428571428571e-05,
      5.714285714285714e-05,
      2.857142857142857e-05,
      0.0,
    ],
  },
  {
    type: "cosine",
    warmup: 0,
    total: 7,
    want: [
      0.0002,
      0.0001900968867902419,
      0.00016234898018587337,
      0.00012225209339563145,
      7.774790660436858e-05,
      3.7651019814126654e-05,
      9.903113209758096e-06,
      0.0,
    ],
  },
  {
    type: "constant_with_warmup",
    warmup: 4,
    total: 9,
    want: [0.0, 5e-05, 0.0001, 0.00015000000000000001, 0.0002, 0.0002, 0.0002, 0.0002, 0.0002, 0.0002],
  },
  { type: "constant", warmup: 4, total: 3, want: [0.0002, 0.0002, 0.0002, 0.0002] },
];

for (const { type, warmup, total, want } of cases) {
  Deno.test(`schedule: ${type}, warmup ${warmup} of ${total} steps, equals transformers bit for bit`, () => {
    const schedule = { type, peakLr: 2e-4, totalSteps: total, warmupSteps: warmup };
    const got = want.map((_, step) => learningRate(schedule, step));
    // The same float64 operations in the same order as transformers': the same bits.
    assert.deepEqual(got, want);
  });
}

Deno.test("schedule: warmup steps from a count or a ratio, as TrainingArguments.get_warmup_steps", () => {
  const table: [number, { warmupSteps?: number; warmupRatio?: number }, number][] = [
    [1000, {}, 0],
    [1000, { warmupRatio: 0.03 }, 30],
    [101, { warmupRatio: 0.1 }, 11],
    [1000, { warmupSteps: 7, warmupRatio: 0.5 }, 7],
  ];
  for (const [total, options, want] of table) {
    assert.equal(warmupStepsOf(total, options), want, JSON.stringify(options));
  }
  assert.throws(() => warmupStepsOf(10, { warmupSteps: -1 }), /whole number/);
  assert.throws(() => warmupStepsOf(10, { warmupRatio: 1.5 }), /\[0, 1\]/);
});
