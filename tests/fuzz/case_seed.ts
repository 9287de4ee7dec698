/**
 * Each fuzz case has its own seed, derived from the run's seed and the case's
 * index, so one failing case replays alone (`--replay <target>:<seed>`).
 *
 * @module
 */

/**
 * The seed of case `index` of a run seeded `run` (a 32-bit hash of both).
 *
 * @example
 * ```ts
 * import { caseSeed } from "./case_seed.ts";
 * caseSeed(1, 0) === caseSeed(1, 0); // true
 * ```
 */
export function caseSeed(run: number, index: number): number {
  let h = (run ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Which cases a run has: replayed inputs first, then cases by their seeds, then `cases` generated ones. */
export interface CasePlan {
  /** The run's seed, for the generated cases. */
  seed: number;
  /** Generated cases. */
  cases: number;
  /** Inputs replayed as they are (regression fixtures). */
  inputs?: readonly Uint8Array[];
  /** Cases replayed from their own seeds (as a failure report prints them). */
  caseSeeds?: readonly number[];
}

/**
 * How many cases `plan` has.
 *
 * @example
 * ```ts
 * import { planSize } from "./case_seed.ts";
 * planSize({ seed: 1, cases: 10, caseSeeds: [7] }); // 11
 * ```
 */
export function planSize(plan: CasePlan): number {
  return (plan.inputs?.length ?? 0) + (plan.caseSeeds?.length ?? 0) + plan.cases;
}

/**
 * The seed of case `index` of `plan`, or -1 when that case replays `plan.inputs[index]`.
 *
 * @example
 * ```ts
 * import { seedOfCase } from "./case_seed.ts";
 * seedOfCase({ seed: 1, cases: 10, caseSeeds: [7] }, 0); // 7
 * ```
 */
export function seedOfCase(plan: CasePlan, index: number): number {
  const replayed = plan.inputs?.length ?? 0;
  if (index < replayed) return -1;
  const seeded = plan.caseSeeds?.length ?? 0;
  if (index < replayed + seeded) return plan.caseSeeds![index - replayed];
  return caseSeed(plan.seed, index - replayed - seeded);
}
