/**
 * Values from a file, quoted for a one-line error message. A file may hold a
 * key with a newline in it, a string of a megabyte or an array nested ten
 * thousand deep; the message must stay one short line all the same, so values
 * are written as compact JSON and cut past a length, without recursing deeper
 * than that length.
 *
 * @module
 */

/**
 * `value` as compact one-line JSON (bigints as `123n`, typed arrays as
 * arrays), cut with "…" after `max` characters.
 *
 * @example
 * ```ts
 * import { describe } from "./describe.ts";
 * describe("a\nb"); // "\"a\\nb\""
 * describe({ dtype: "F32", shape: [2, 3] }); // '{"dtype":"F32","shape":[2,3]}'
 * describe("x".repeat(500), 10); // '"xxxxxxxxx…'
 * ```
 */
export function describe(value: unknown, max = 100): string {
  let out = "";
  // Each nesting level writes at least one character, so the recursion ends within `max` levels.
  const walk = (v: unknown): void => {
    if (out.length > max) return;
    if (typeof v === "string") {
      out += JSON.stringify(v.length > max ? v.slice(0, max + 1) : v);
    } else if (typeof v === "bigint") {
      out += `${v}n`;
    } else if (typeof v === "number" || typeof v === "boolean" || v === null || v === undefined) {
      out += String(v);
    } else if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
      const list = v as ArrayLike<unknown>;
      out += "[";
      for (let i = 0; i < list.length && out.length <= max; i++) {
        if (i > 0) out += ",";
        walk(list[i]);
      }
      out += "]";
    } else if (typeof v === "object") {
      out += "{";
      let first = true;
      for (const key in v) {
        if (out.length > max) break;
        if (!Object.hasOwn(v, key)) continue;
        if (!first) out += ",";
        first = false;
        out += JSON.stringify(key.length > max ? key.slice(0, max + 1) : key) + ":";
        walk((v as Record<string, unknown>)[key]);
      }
      out += "}";
    } else {
      out += typeof v;
    }
  };
  walk(value);
  return out.length > max ? out.slice(0, max) + "…" : out;
}

/**
 * `text` (another library's error message, say) on one line: every run of
 * whitespace or control characters becomes one space, and the result is cut
 * with "…" after `max` characters. V8's JSON.parse, for one, quotes the bad
 * input, newlines included.
 *
 * @example
 * ```ts
 * import { oneLine } from "./describe.ts";
 * oneLine('Unexpected token \'x\', "{"a":\n x}" is not valid JSON'); // 'Unexpected token \'x\', "{"a": x}" is not valid JSON'
 * ```
 */
export function oneLine(text: string, max = 200): string {
  // deno-lint-ignore no-control-regex
  const flat = text.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max) + "…" : flat;
}
