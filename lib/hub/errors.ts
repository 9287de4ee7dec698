/**
 * The one error type of Hub downloads. Its message is a single line that says
 * what went wrong and what to do; `code` lets callers react (an optional file
 * that is missing, a network failure that may fall back to the cache).
 *
 * @module
 */

/** What went wrong, from the caller's point of view. */
export type HubErrorCode =
  /** Gated or private repository: license not accepted, token missing or refused (401/403). */
  | "auth"
  /** No such repository (or private and invisible to this token). */
  | "repo-not-found"
  /** No such branch, tag or commit. */
  | "revision-not-found"
  /** The repository has no such file at this revision. */
  | "file-not-found"
  /** Offline (HF_HUB_OFFLINE) and the cache does not hold what was asked. */
  | "offline"
  /** The endpoint could not be reached, timed out or failed (5xx, 429). */
  | "network"
  /** The endpoint answered something that is not the Hub's protocol (missing headers, bad index). */
  | "protocol"
  /** The downloaded bytes do not match the size or sha256 the Hub announced. */
  | "integrity"
  /** Reading or writing the cache failed (disk full, permissions). */
  | "io"
  /** The model id or path itself is unusable. */
  | "invalid";

/**
 * A Hub or cache failure with a one-line, actionable message.
 *
 * @example
 * ```ts
 * import { HubError } from "./errors.ts";
 * const e = new HubError("offline", "HF_HUB_OFFLINE is set and org/name is not in the cache");
 * e.code; // "offline"
 * ```
 */
export class HubError extends Error {
  /** The kind of failure. */
  readonly code: HubErrorCode;

  /** Creates the error; `message` should say what to do. */
  constructor(code: HubErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HubError";
    this.code = code;
  }
}
