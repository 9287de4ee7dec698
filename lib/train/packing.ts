/**
 * Which examples go together: micro-batches packed end to end up to a token
 * budget (no padding; lib/model/batch.ts lays them out with cu_seqlens, loss
 * rows and targets), drawn every epoch in a new order.
 *
 * Each epoch shuffles the examples with a generator seeded from (seed,
 * epoch), cuts the shuffled list into buckets of about `bucketBatches`
 * batches' worth of tokens, sorts each bucket by length, longest first, and
 * packs it first-fit (each example into the first batch with room: the
 * classic bin-packing rule, which fills batches to within a few percent of
 * the budget), and finally shuffles the batches so that the buckets mix.
 * Buckets keep the epoch random: sorting the whole set would give the same
 * batches every epoch. The
 * plan is a pure function of the lengths, the options and the seed: a
 * resumed run recomputes it instead of storing it.
 *
 * @module
 */

import { packBatch, type SequenceToPack, type TrainBatch } from "../model/batch.ts";
import { seededRandom } from "../data/shuffle.ts";

/** Options of {@link packEpoch} and {@link planTraining}. */
export interface PackOptions {
  /** Most tokens in one micro-batch; a longer example goes alone. */
  readonly tokenBudget: number;
  /** Batches' worth of tokens per length-sorted bucket (default 16). */
  readonly bucketBatches?: number;
}

/** The generator of an epoch's order: mulberry32 seeded from the run's seed and the epoch. */
function epochRandom(seed: number, epoch: number): () => number {
  return seededRandom((seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
}

function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Greedy packing of `order` (indices into lengths) into batches of at most `budget` tokens, in that order. */
function packGreedy(order: readonly number[], lengths: readonly number[], budget: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let tokens = 0;
  for (const i of order) {
    if (current.length > 0 && tokens + lengths[i] > budget) {
      batches.push(current);
      current = [];
      tokens = 0;
    }
    current.push(i);
    tokens += lengths[i];
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** First-fit packing of `order`: each example goes into the first batch it fits in, else a new one. */
function packFirstFit(order: readonly number[], lengths: readonly number[], budget: number): number[][] {
  const batches: number[][] = [];
  const room: number[] = [];
  for (const i of order) {
    const b = room.findIndex((r) => r >= lengths[i]);
    if (b < 0) {
      batches.push([i]);
      room.push(budget - lengths[i]);
    } else {
      batches[b].push(i);
      room[b] -= lengths[i];
    }
  }
  return batches;
}

function checkOptions(lengths: readonly number[], options: PackOptions): void {
  if (!(Number.isInteger(options.tokenBudget) && options.tokenBudget > 0)) {
    throw new RangeError(`the batch token budget must be a positive integer, got ${options.tokenBudget}`);
  }
  if (lengths.length === 0) throw new RangeError("there are no examples to pack");
}

/**
 * The micro-batches of one epoch: lists of example indices, each at most
 * `tokenBudget` tokens (unless one example alone is longer), every example
 * exactly once.
 *
 * @example
 * ```ts
 * import { packEpoch } from "./packing.ts";
 * const batches = packEpoch([5, 3, 8, 2, 6], { tokenBudget: 10 }, 42, 0);
 * batches.flat().sort(); // [0, 1, 2, 3, 4]
 * ```
 */
export function packEpoch(lengths: readonly number[], options: PackOptions, seed: number, epoch: number): number[][] {
  checkOptions(lengths, options);
  const random = epochRandom(seed, epoch);
  const order = shuffleInPlace(lengths.map((_, i) => i), random);
  const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
  const perBucket = Math.max(1, Math.round(((options.bucketBatches ?? 16) * options.tokenBudget) / mean));
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += perBucket) {
    // Stable sort: equal lengths keep their shuffled order.
    const bucket = order.slice(start, start + perBucket).sort((a, b) => lengths[b] - lengths[a]);
    batches.push(...packFirstFit(bucket, lengths, options.tokenBudget));
  }
  return shuffleInPlace(batches, random);
}

/**
 * Batches for evaluation: sorted by length (tightest packing), no shuffle.
 *
 * @example
 * ```ts
 * import { packSorted } from "./packing.ts";
 * packSorted([5, 3, 8, 2], 10); // [[3, 1, 0], [2]]
 * ```
 */
export function packSorted(lengths: readonly number[], tokenBudget: number): number[][] {
  checkOptions(lengths, { tokenBudget });
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  return packGreedy(order, lengths, tokenBudget);
}

/** One optimizer step: its epoch (0-based) and its micro-batches. */
export interface PlannedStep {
  /** The epoch the step belongs to. */
  readonly epoch: number;
  /** Micro-batches whose gradients the step accumulates. */
  readonly batches: readonly (readonly number[])[];
}

/**
 * Every optimizer step of a run: each epoch's micro-batches in groups of
 * `gradAccum` (an epoch's last step may take fewer; steps never span two
 * epochs, as in transformers' Trainer).
 *
 * @example
 * ```ts
 * import { planTraining } from "./packing.ts";
 * const steps = planTraining([4, 4, 4, 4, 4], { tokenBudget: 4 }, { epochs: 2, gradAccum: 2, seed: 1 });
 * steps.length; // 6: three steps (2 + 2 + 1 batches) per epoch
 * steps[3].epoch; // 1
 * ```
 */
export function planTraining(
  lengths: readonly number[],
  options: PackOptions,
  run: { epochs: number; gradAccum: number; seed: number },
): PlannedStep[] {
  if (!(Number.isInteger(run.epochs) && run.epochs > 0)) {
    throw new RangeError(`epochs must be a positive integer, got ${run.epochs}`);
  }
  if (!(Number.isInteger(run.gradAccum) && run.gradAccum > 0)) {
    throw new RangeError(`gradient accumulation steps must be a positive integer, got ${run.gradAccum}`);
  }
  const steps: PlannedStep[] = [];
  for (let epoch = 0; epoch < run.epochs; epoch++) {
    const batches = packEpoch(lengths, options, run.seed, epoch);
    for (let i = 0; i < batches.length; i += run.gradAccum) {
      steps.push({ epoch, batches: batches.slice(i, i + run.gradAccum) });
    }
  }
  return steps;
}

/**
 * The packed batch of some examples (see lib/model/batch.ts).
 *
 * @example
 * ```ts
 * import { batchOf } from "./packing.ts";
 * const examples = [{ tokens: [1, 5, 2], completionStart: 2 }, { tokens: [1, 6, 7, 2], completionStart: 2 }];
 * batchOf(examples, [1, 0]).cuSeqlens; // Int32Array [0, 4, 7]
 * ```
 */
export function batchOf(examples: readonly SequenceToPack[], indices: readonly number[]): TrainBatch {
  return packBatch(indices.map((i) => examples[i]));
}
