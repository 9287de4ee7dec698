/**
 * The one error type of data loading: a bad CSV, a missing column, an unknown
 * label. Its message is a single line that names the file (and the line, when
 * one is at fault) and says what to do, so the command line can print it as is.
 *
 * @module
 */

/**
 * A problem with an input file or a data option, in one line.
 *
 * @example
 * ```ts
 * import { DataError } from "./errors.ts";
 * const e = new DataError("no label", { file: "train.csv", line: 7 });
 * e.message; // "train.csv: line 7: no label"
 * ```
 */
export class DataError extends Error {
  /** The file at fault, when there is one. */
  readonly file: string | undefined;
  /** The 1-based line of the file where the faulty record starts, when one is at fault. */
  readonly line: number | undefined;

  /** Builds the message from the file, the line and what went wrong. */
  constructor(what: string, where: { file?: string; line?: number } = {}, options?: ErrorOptions) {
    const prefix = where.file === undefined
      ? ""
      : where.line === undefined
      ? `${where.file}: `
      : `${where.file}: line ${where.line}: `;
    super(prefix + what, options);
    this.name = "DataError";
    this.file = where.file;
    this.line = where.line;
  }
}
