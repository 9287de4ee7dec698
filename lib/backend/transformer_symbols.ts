/**
 * The transformer ops' native symbols (issue 3). They are declared
 * `optional: true` in symbols.ts while libcudakernels does not export them
 * yet, so opening a library without them still works; asking for one that is
 * missing throws a message that says how to fix it.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import type { KernelLibrary, symbols } from "./symbols.ts";

/** Names of the symbols declared optional in symbols.ts. */
export type OptionalSymbol = {
  [K in keyof typeof symbols]: (typeof symbols)[K] extends { optional: true } ? K : never;
}[keyof typeof symbols];

/**
 * The native function `name` of the backend's library, or an Error saying to
 * rebuild when that library was built without it.
 *
 * @example
 * ```ts
 * import { openBackend } from "./backend.ts";
 * import { transformerOp } from "./transformer_symbols.ts";
 * using backend = await openBackend("cpu");
 * const add = transformerOp(backend, "lorac_add_scaled");
 * typeof add; // "function"
 * ```
 */
export function transformerOp<K extends OptionalSymbol>(
  backend: Backend,
  name: K,
): NonNullable<KernelLibrary["symbols"][K]> {
  const fn = backend.lib.symbols[name];
  if (fn === null) {
    throw new Error(`${name}: this op is not in the ${backend.kind} library yet: rebuild with \`deno task build\``);
  }
  return fn as NonNullable<KernelLibrary["symbols"][K]>;
}
