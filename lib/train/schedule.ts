/**
 * Learning-rate schedules as transformers computes them
 * (`get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`,
 * `get_constant_schedule(_with_warmup)` under torch's LambdaLR): the rate of
 * optimizer step `s` (0-based) is `peak · λ(s)`, with λ rising linearly from 0
 * over the warmup steps, then falling linearly (or along half a cosine) to 0
 * at `totalSteps`. So with warmup the first step runs at rate 0, as in
 * transformers.
 *
 * @module
 */

/** The schedule shapes of transformers' `--lr_scheduler_type` that lorac offers. */
export type SchedulerType = "linear" | "cosine" | "constant" | "constant_with_warmup";

/** The scheduler names, for option parsing. */
export const SCHEDULER_TYPES: readonly SchedulerType[] = ["linear", "cosine", "constant", "constant_with_warmup"];

/** A schedule over a whole run. */
export interface Schedule {
  /** The shape. */
  readonly type: SchedulerType;
  /** The rate after warmup (the optimiser's `lr`). */
  readonly peakLr: number;
  /** Optimizer steps in the run. */
  readonly totalSteps: number;
  /** Steps of linear warmup from 0 (ignored by "constant"). */
  readonly warmupSteps: number;
}

/**
 * Warmup steps as transformers' TrainingArguments.get_warmup_steps counts
 * them: `warmupSteps` when positive, else `ceil(totalSteps · warmupRatio)`.
 *
 * @example
 * ```ts
 * import { warmupStepsOf } from "./schedule.ts";
 * warmupStepsOf(1000, { warmupRatio: 0.03 }); // 30
 * warmupStepsOf(1000, { warmupSteps: 5, warmupRatio: 0.03 }); // 5
 * ```
 */
export function warmupStepsOf(totalSteps: number, options: { warmupSteps?: number; warmupRatio?: number }): number {
  const steps = options.warmupSteps ?? 0;
  const ratio = options.warmupRatio ?? 0;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`warmup steps must be a whole number >= 0, got ${steps}`);
  }
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`warmup ratio must be in [0, 1], got ${ratio}`);
  return steps > 0 ? steps : Math.ceil(totalSteps * ratio);
}

/** λ(step): the factor on the peak rate (transformers' lr_lambda, in float64 like Python). */
function factor(s: Schedule, step: number): number {
  const { type, totalSteps: T, warmupSteps: W } = s;
  if (type === "constant") return 1;
  if (step < W) return step / Math.max(1, W);
  if (type === "constant_with_warmup") return 1;
  const progress = (step - W) / Math.max(1, T - W);
  if (type === "linear") return Math.max(0, (T - step) / Math.max(1, T - W));
  // num_cycles = 0.5: half a cosine from 1 down to 0.
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}

/**
 * The learning rate of optimizer step `step` (0-based).
 *
 * @example
 * ```ts
 * import { learningRate } from "./schedule.ts";
 * const schedule = { type: "linear", peakLr: 2e-4, totalSteps: 10, warmupSteps: 3 } as const;
 * learningRate(schedule, 0); // 0
 * learningRate(schedule, 3); // 0.0002
 * learningRate(schedule, 9); // ≈ 2.857e-5
 * ```
 */
export function learningRate(schedule: Schedule, step: number): number {
  return schedule.peakLr * factor(schedule, step);
}
