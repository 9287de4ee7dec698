/**
 * The one error type of tokenizer loading: a tokenizer.json,
 * tokenizer_config.json or GGUF tokenizer that cannot be used. Its message is
 * one line, `<file>: <problem>`, naming the field at fault.
 *
 * @module
 */

/** The name a tokenizer.json is given in messages until the caller names the real file. */
export const TOKENIZER_JSON = "tokenizer.json";
/** The name a tokenizer_config.json is given in messages until the caller names the real file. */
export const TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
/** The name a GGUF's tokenizer metadata is given in messages until the caller names the real file. */
export const GGUF_METADATA = "GGUF metadata";

/**
 * A tokenizer file that cannot be read or used.
 *
 * @example
 * ```ts
 * import { TokenizerError } from "./errors.ts";
 * const e = new TokenizerError("model/tokenizer.json", "model.merges should be a list");
 * e.message; // "model/tokenizer.json: model.merges should be a list"
 * ```
 */
export class TokenizerError extends Error {
  /** The file (or GGUF metadata) at fault. */
  readonly source: string;
  /** What is wrong, without the file name. */
  readonly problem: string;

  /** Creates the error; the message is `<source>: <problem>`. */
  constructor(source: string, problem: string, options?: ErrorOptions) {
    super(`${source}: ${problem}`, options);
    this.name = "TokenizerError";
    this.source = source;
    this.problem = problem;
  }
}
