/**
 * Flag parsing for the bench scripts that take `--name value` flags.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/**
 * Parses `args` against `options`; on an unknown or malformed flag prints one line naming the
 * script, what was wrong and the flags it takes, and exits with status 2.
 *
 * @example
 * ```ts
 * import { benchFlags } from "./flags.ts";
 * const f = benchFlags("bench:example", ["--seed", "7"], { seed: { type: "string", default: "42" } });
 * f.seed; // "7"
 * ```
 */
export function benchFlags<const T extends ParseArgsOptionsConfig>(script: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true }).values;
  } catch (e) {
    const known = Object.keys(options).map((k) => `--${k}`).join(" ");
    console.error(`${script}: ${(e as Error).message.split(". ")[0]}; the flags are ${known}`);
    Deno.exit(2);
  }
}
