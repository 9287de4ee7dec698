/**
 * CSV-aware mutators: quoting chaos (a quote opened and never closed, a
 * quote inside a bare field, text after a closing quote, doubled and
 * tripled quotes), line ends of every kind, commas added and lost, a header
 * with a repeated or missing column, rows longer and shorter than the
 * header, a byte-order mark in the middle, NUL bytes, very long fields and
 * bytes that are not UTF-8. Every choice comes from the seeded {@link Rng}.
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";
import { INVALID_UTF8, mutateBytes } from "./mutate_bytes.ts";

/** Characters CSV parsing turns on. */
const SPECIAL = ['"', '""', '"""', ",", "\n", "\r", "\r\n", "\n\n", " ", '" ', ' "', "\ufeff", "\u0000", "\t", "\\"];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

/** One text-level CSV mutation. */
function mutateText(rng: Rng, text: string): string {
  const lines = text.split(/(?<=\n)/);
  const at = rng.int(0, text.length);
  switch (rng.int(0, 11)) {
    case 0:
    case 1:
      return text.slice(0, at) + pick(rng, SPECIAL) + text.slice(at);
    case 2: { // drop a quote or a comma
      const targets = [...text.matchAll(/[",]/g)].map((m) => m.index);
      if (targets.length === 0) return text;
      const i = pick(rng, targets);
      return text.slice(0, i) + text.slice(i + 1);
    }
    case 3: // a quoted field opened and never closed
      return text + (rng.next() < 0.5 ? '"' : ',"open field\n');
    case 4: { // repeat or drop a line (the header included)
      const i = rng.int(0, lines.length - 1);
      if (rng.next() < 0.5) lines.splice(i, 0, lines[i]);
      else lines.splice(i, 1);
      return lines.join("");
    }
    case 5: { // a header column repeated or renamed
      const header = lines[0] ?? "";
      const cols = header.replace(/\r?\n$/, "").split(",");
      const i = rng.int(0, cols.length - 1);
      if (rng.next() < 0.5) cols.push(cols[i]);
      else cols[i] = pick(rng, ["", " title", "label_name ", '"title"', "text", cols[i] + cols[i]]);
      lines[0] = cols.join(",") + (header.endsWith("\n") ? "\n" : "");
      return lines.join("");
    }
    case 6: // line ends switched
      return rng.next() < 0.5 ? text.replaceAll("\n", "\r\n") : text.replaceAll("\r\n", "\r");
    case 7: { // a long field
      const long = "w".repeat(rng.int(1000, 30_000));
      return text.slice(0, at) + (rng.next() < 0.5 ? `"${long}"` : long) + text.slice(at);
    }
    case 8: // many columns in one row
      return text.slice(0, at) + ",".repeat(rng.int(2, 2000)) + text.slice(at);
    case 9: // many blank or whitespace lines
      return text.slice(0, at) + pick(rng, ["\n", "\r\n", " \n", ",\n"]).repeat(rng.int(1, 200)) + text.slice(at);
    case 10: // a field blanked
      return text.replace(/,[^,\n]*/, ",");
    default: // cut anywhere
      return text.slice(0, at);
  }
}

/**
 * Applies `count` CSV mutations to `seed` (text) and returns the bytes; some
 * of the time bytes that are not UTF-8 go in, or a byte-level mutation follows.
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { mutateCsv } from "./mutate_csv.ts";
 * mutateCsv(new Rng(5), "title,label_name\nA,cs.CL\n", 3).length > 0;
 * ```
 */
export function mutateCsv(rng: Rng, seed: string, count: number): Uint8Array {
  let text = seed;
  for (let i = 0; i < count; i++) text = mutateText(rng, text);
  let bytes: Uint8Array = new TextEncoder().encode(text);
  const r = rng.next();
  if (r < 0.08) {
    const at = rng.int(0, bytes.length);
    const bad = pick(rng, INVALID_UTF8);
    const out = new Uint8Array(bytes.length + bad.length);
    out.set(bytes.subarray(0, at));
    out.set(bad, at);
    out.set(bytes.subarray(at), at + bad.length);
    bytes = out;
  } else if (r < 0.2) {
    bytes = mutateBytes(rng, bytes);
  }
  return bytes;
}
