/**
 * Seeded shuffling for data work (splits, few-shot exemplars): the same seed
 * gives the same order on every machine and every run.
 *
 * The generator is mulberry32: 32-bit state, fast, and good enough to order
 * rows; it is not for cryptography.
 *
 * @module
 */

/**
 * A generator of uniform numbers in [0, 1) from a 32-bit seed.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./shuffle.ts";
 * const r = seededRandom(42);
 * r() === seededRandom(42)(); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A shuffled copy of `items` (Fisher-Yates with {@link seededRandom}).
 *
 * @example
 * ```ts
 * import { shuffled } from "./shuffle.ts";
 * shuffled([1, 2, 3, 4], 7).sort(); // [1, 2, 3, 4]
 * ```
 */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const random = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
