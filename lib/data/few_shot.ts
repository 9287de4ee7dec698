/**
 * Few-shot exemplars: k training examples per label, drawn with a seed, shown
 * in every prompt before the text to classify (see prompts.ts). The same seed
 * gives the same exemplars in training and in prediction, so the model reads
 * the prompts it was trained on.
 *
 * @module
 */

import type { Example } from "./examples.ts";
import { splitLabels } from "./labels.ts";
import type { Exemplar } from "./prompts.ts";
import { shuffled } from "./shuffle.ts";

/** Options of {@link pickExemplars}. */
export interface FewShotOptions {
  /** Exemplars per label (a label with fewer training examples gives all it has). */
  perLabel: number;
  /** Seed of the draw. */
  seed: number;
  /** Gold cells hold comma-separated labels: an example counts for each of its labels, and is used once. */
  multiLabel?: boolean;
}

/**
 * Draws `perLabel` exemplars for each label from the training examples, then
 * orders them by a seeded shuffle so that labels interleave.
 *
 * @example
 * ```ts
 * import { pickExemplars } from "./few_shot.ts";
 * const train = [
 *   { line: 2, text: "Lunch?.", gold: "ham" },
 *   { line: 3, text: "WIN NOW.", gold: "spam" },
 *   { line: 4, text: "Minutes attached.", gold: "ham" },
 * ];
 * pickExemplars(train, ["ham", "spam"], { perLabel: 1, seed: 1 }).length; // 2
 * ```
 */
export function pickExemplars(
  train: readonly Example[],
  labels: readonly string[],
  options: FewShotOptions,
): Exemplar[] {
  if (!Number.isInteger(options.perLabel) || options.perLabel < 0) {
    throw new RangeError(`few-shot exemplars per label must be a whole number >= 0, got ${options.perLabel}`);
  }
  const pool = shuffled(train.filter((e) => e.gold), options.seed);
  const used = new Set<Example>();
  const picked: Exemplar[] = [];
  for (const label of labels) {
    let count = 0;
    for (const e of pool) {
      if (count === options.perLabel) break;
      const gold = e.gold as string;
      const has = options.multiLabel ? splitLabels(gold).includes(label) : gold === label;
      if (!has || used.has(e)) continue;
      used.add(e);
      picked.push({ text: e.text, answer: gold });
      count++;
    }
  }
  return shuffled(picked, options.seed ^ 0x5bd1e995);
}
