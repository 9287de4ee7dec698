/**
 * HF `tokenizers` compiles tokenizer.json patterns with Oniguruma; this turns
 * such a pattern into a JavaScript RegExp that matches the same text. The
 * difference that matters is `\s`: Oniguruma's is Unicode White_Space (it
 * includes U+0085 and not U+FEFF), JavaScript's is the reverse, so the class
 * is spelled out. `\d` and `\w` are Unicode-wide in Oniguruma and become
 * property classes here.
 *
 * @module
 */

import { describe, oneLine } from "../util/describe.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";

/**
 * Unicode White_Space, the set Oniguruma's and Rust's `\s` match, as class contents.
 *
 * @example
 * ```ts
 * import { WHITE_SPACE_CLASS } from "./regex.ts";
 * new RegExp(`[${WHITE_SPACE_CLASS}]`, "u").test("\u0085"); // true
 * ```
 */
export const WHITE_SPACE_CLASS = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/**
 * Whether a UTF-16 code unit is Unicode White_Space (all of it lies in the BMP).
 *
 * @example
 * ```ts
 * import { isWhiteSpace } from "./regex.ts";
 * [isWhiteSpace(0x85), isWhiteSpace(0xfeff)]; // [true, false]
 * ```
 */
export function isWhiteSpace(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

const DIGIT_CLASS = "\\p{Nd}";
const WORD_CLASS = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
// Characters a `u`-mode RegExp accepts after a backslash outside a class (inside, `-` too).
const SYNTAX = "^$\\.*+?()[]{}|/";

/**
 * Compiles an HF (Oniguruma) pattern into a global, Unicode JavaScript
 * RegExp; a pattern it cannot translate is a {@link TokenizerError}.
 *
 * @example
 * ```ts
 * import { compileHfPattern } from "./regex.ts";
 * const re = compileHfPattern("\\s+|\\S+");
 * "a\u0085b\ufeffc".match(re); // ["a", "\u0085", "b\ufeffc"]
 * ```
 */
export function compileHfPattern(pattern: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== "\\") {
      if (inClass && c === "]") inClass = false;
      else if (!inClass && c === "[") inClass = true;
      out += c;
      continue;
    }
    const e = pattern[++i];
    if (e === undefined) {
      throw new TokenizerError(TOKENIZER_JSON, `regex ${describe(pattern)} ends in a lone backslash`);
    }
    const cls = e === "s" || e === "S" ? WHITE_SPACE_CLASS : e === "d" || e === "D" ? DIGIT_CLASS : WORD_CLASS;
    if ("sdw".includes(e)) {
      out += inClass ? cls : `[${cls}]`;
    } else if ("SDW".includes(e)) {
      if (inClass) {
        throw new TokenizerError(
          TOKENIZER_JSON,
          `regex ${describe(pattern)}: \\${e} inside a character class is not supported`,
        );
      }
      out += `[^${cls}]`;
    } else if (/[0-9A-Za-z]/.test(e) || SYNTAX.includes(e) || (inClass && e === "-")) {
      out += "\\" + e;
    } else {
      out += e; // an identity escape such as \' that Unicode-mode RegExps reject
    }
  }
  try {
    return compiled(new RegExp(out, "gu"));
  } catch (err) {
    throw new TokenizerError(
      TOKENIZER_JSON,
      `regex ${describe(pattern)} has no JavaScript equivalent (${oneLine(String(err), 120)})`,
    );
  }
}

/** `re`, compiled now: V8 compiles on first use, and only then finds a pattern too large. */
function compiled(re: RegExp): RegExp {
  re.test("");
  re.lastIndex = 0;
  return re;
}

/**
 * A global, Unicode RegExp matching `text` literally (a Split's String
 * pattern, Metaspace's replacement); a literal too long for a RegExp is a
 * {@link TokenizerError} naming it.
 *
 * @example
 * ```ts
 * import { literalRegExp } from "./regex.ts";
 * "a.b.c".split(literalRegExp(".")); // ["a", "b", "c"]
 * ```
 */
export function literalRegExp(text: string): RegExp {
  try {
    return compiled(new RegExp(RegExp.escape(text), "gu"));
  } catch (err) {
    throw new TokenizerError(
      TOKENIZER_JSON,
      `pattern ${describe(text, 40)} (${text.length} characters) is too long to match (${oneLine(String(err), 60)})`,
    );
  }
}
