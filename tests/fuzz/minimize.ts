/**
 * Shrinks a failing fuzz input before it is kept as a regression fixture:
 * ranges of bytes are cut, halves first, then smaller ones, as long as the
 * input still fails the same way (same class of error from the same place).
 * Inputs of several parts are shrunk part by part.
 *
 * @module
 */

import { judge } from "./oracle.ts";
import { packParts, unpackParts } from "./parts.ts";
import type { FuzzTarget } from "./targets.ts";

/** Multi-part targets (their inputs are packParts containers). */
const MULTI_PART = new Set(["tokenizer", "adapter"]);

/** How a failure looks with its numbers and quoted values dropped: what must stay the same while shrinking. */
function signature(what: string): string {
  return what.replace(/"[^"]*"|\d+(\.\d+)?(e[+-]?\d+)?/g, "#").split(":").slice(0, 3).join(":");
}

/** The failure `input` causes, or null when it does not fail. */
async function failureOf(target: FuzzTarget, input: Uint8Array): Promise<string | null> {
  let thrown: unknown;
  try {
    await target.run(input);
  } catch (e) {
    thrown = e;
  }
  const verdict = judge(thrown, target.errors, target.paths);
  return verdict.kind === "failure" ? signature(verdict.what) : null;
}

/**
 * A smaller input that fails as `input` does (at most `budget` tries); `input`
 * itself when it does not fail or nothing can be cut.
 *
 * @example
 * ```ts ignore
 * import { minimize } from "./minimize.ts";
 * import { TARGETS } from "./targets.ts";
 * const small = await minimize(TARGETS.csv, new TextEncoder().encode("a,b\n1,2\n"));
 * ```
 */
export async function minimize(target: FuzzTarget, input: Uint8Array, budget = 3000): Promise<Uint8Array> {
  const want = await failureOf(target, input);
  if (want === null) return input;
  const parts = MULTI_PART.has(target.name) ? unpackParts(input) : [input];
  const wrap = (ps: Uint8Array[]) => (MULTI_PART.has(target.name) ? packParts(ps) : ps[0]);
  let tries = 0;
  for (let p = 0; p < parts.length; p++) {
    for (let chunk = Math.max(1, parts[p].length >> 1); chunk >= 1; chunk >>= 1) {
      for (let at = 0; at < parts[p].length && tries < budget;) {
        const cut = new Uint8Array(parts[p].length - Math.min(chunk, parts[p].length - at));
        cut.set(parts[p].subarray(0, at));
        cut.set(parts[p].subarray(at + chunk), at);
        const candidate = parts.map((x, i) => (i === p ? cut : x));
        tries++;
        if (await failureOf(target, wrap(candidate)) === want) parts[p] = cut;
        else at += chunk;
      }
    }
  }
  return wrap(parts);
}
