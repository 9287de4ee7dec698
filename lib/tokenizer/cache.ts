/**
 * A bounded map for word -> token ids. Text repeats its words, so most
 * lookups hit; when full, the oldest entry leaves (insertion order), which
 * keeps both hits and inserts O(1).
 *
 * @module
 */

/**
 * A size-bounded cache that evicts the oldest entry first.
 *
 * @example
 * ```ts
 * import { BoundedCache } from "./cache.ts";
 * const c = new BoundedCache<string, number>(2);
 * c.set("a", 1); c.set("b", 2); c.set("c", 3);
 * c.get("a"); // undefined: evicted
 * c.get("c"); // 3
 * ```
 */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, V>();
  /** The most entries held at once. */
  readonly capacity: number;

  /** A cache of at most `capacity` entries (0 disables it). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`cache capacity ${capacity} must be an integer >= 0`);
    }
    this.capacity = capacity;
  }

  /** The value stored for `key`, if any. */
  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Stores `value` for `key`, evicting the oldest entry when full. */
  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    if (this.#map.size >= this.capacity && !this.#map.has(key)) {
      this.#map.delete(this.#map.keys().next().value as K);
    }
    this.#map.set(key, value);
  }

  /** How many entries are stored. */
  get size(): number {
    return this.#map.size;
  }

  /** Forgets every entry. */
  clear(): void {
    this.#map.clear();
  }
}
