/**
 * What counts as a correct outcome of one fuzz case: the parser accepted the
 * input (and what it returned is self-consistent), or it refused it with one
 * of the project's own error classes whose message is one line, names the
 * file and is short. Anything else is a failure: an error class leaking from
 * inside (TypeError, RangeError, SyntaxError, ...), a malformed message, an
 * accepted input whose result breaks an invariant, or (checked by the worker)
 * a case that allocates hundreds of megabytes.
 *
 * @module
 */

import { oneLine } from "../../lib/util/describe.ts";

/** A class of errors a parser may refuse an input with. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Thrown by a target when a parse succeeded but its result is inconsistent (accepted garbage).
 *
 * @example
 * ```ts
 * import { InvariantError, judge } from "./oracle.ts";
 * judge(new InvariantError("offset NaN"), [], ["a.bin"]); // { kind: "failure", what: "invariant: offset NaN" }
 * ```
 */
export class InvariantError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

/**
 * Throws an {@link InvariantError} with `message` unless `ok`.
 *
 * @example
 * ```ts
 * import { invariant } from "./oracle.ts";
 * invariant(1 + 1 === 2, "arithmetic");
 * ```
 */
export function invariant(ok: boolean, message: string): asserts ok {
  if (!ok) throw new InvariantError(message);
}

/** The outcome of one case. */
export type Verdict =
  | { kind: "ok" }
  | { kind: "refused"; cls: string }
  | { kind: "failure"; what: string };

/** Longest accepted message, beyond the file name. */
export const MAX_MESSAGE = 400;

/**
 * Most memory one case may leave allocated (V8 heap and ArrayBuffers, measured
 * after the case): inputs are at most a few MB, so more means a size was taken
 * from a length field in the file rather than checked against the file.
 */
export const MAX_CASE_BYTES = 256 << 20;

/** The first stack frame inside lib/ (where a leaked error came from), or the first frame. */
function origin(e: Error): string {
  const frames = (e.stack ?? "").split("\n").filter((l) => l.trim().startsWith("at "));
  const frame = frames.find((l) => l.includes("/lib/")) ?? frames[0] ?? "";
  return oneLine(frame.replace(/^.*\/(lib\/[^)]*)\)?$/, "$1"), 120);
}

/**
 * Judges what a case threw (`undefined`: nothing) against the classes it may
 * throw and the file names its messages must start with.
 *
 * @example
 * ```ts
 * import { judge } from "./oracle.ts";
 * judge(new TypeError("x"), [], ["a.json"]).kind; // "failure"
 * judge(undefined, [], ["a.json"]).kind; // "ok"
 * ```
 */
export function judge(thrown: unknown, allowed: readonly ErrorClass[], paths: readonly string[]): Verdict {
  if (thrown === undefined) return { kind: "ok" };
  if (thrown instanceof InvariantError) return { kind: "failure", what: `invariant: ${oneLine(thrown.message)}` };
  if (!(thrown instanceof Error)) return { kind: "failure", what: `threw a non-Error: ${oneLine(String(thrown))}` };
  const cls = thrown.constructor.name;
  if (!allowed.some((c) => thrown.constructor === c)) {
    return { kind: "failure", what: `leak: ${cls}: ${oneLine(thrown.message, 160)} (${origin(thrown)})` };
  }
  const message = thrown.message;
  const path = paths.find((p) => message.startsWith(`${p}: `));
  const problem = /[\r\n\u2028\u2029]/.test(message)
    ? "spans several lines"
    : path === undefined
    ? `does not start with the file name (${paths.join(" or ")})`
    : message.length > path.length + 2 + MAX_MESSAGE
    ? `is ${message.length} characters long`
    : undefined;
  if (problem) return { kind: "failure", what: `message: ${cls} message ${problem}: ${oneLine(message, 160)}` };
  return { kind: "refused", cls };
}
