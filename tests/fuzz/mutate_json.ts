/**
 * Structure-aware JSON mutators: they change a parsed document where a
 * parser reads it — a field of the wrong type, null, an array for an object,
 * a huge or fractional number, a missing or renamed key, a string with
 * regex syntax or a lone surrogate, a subtree nested ten thousand deep —
 * and then, sometimes, damage the text itself (cut, bad UTF-8, a duplicate
 * key). Every choice comes from the seeded {@link Rng}.
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";
import { mutateBytes } from "./mutate_bytes.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type Container = Json[] | { [key: string]: Json };

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length - 1)];
}

function isContainer(v: Json): v is Container {
  return typeof v === "object" && v !== null;
}

function keysOf(c: Container): (string | number)[] {
  return Array.isArray(c) ? c.map((_, i) => i) : Object.keys(c);
}

function get(c: Container, k: string | number): Json {
  return (c as Record<string | number, Json>)[k];
}

/** Sets a member; defineProperty, so a key "__proto__" is a plain key as JSON.parse makes it. */
function set(c: Container, k: string | number, v: Json): void {
  Object.defineProperty(c, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Numbers parsers get wrong: zero, negatives, fractions, -0, past 2^31, 2^32 and 2^53, the double limits. */
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  2,
  1.5,
  -2.5,
  1e-300,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 64,
  1e308,
];
/** Strings that are keys of Object.prototype, regex syntax, controls, a lone surrogate, a BOM. */
const STRINGS = [
  "",
  " ",
  "a",
  "__proto__",
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "(",
  "[",
  "\\",
  "(?<",
  "\\p{",
  "*+",
  "\n",
  "a\nb\r\n",
  "\u0000",
  "\ud800",
  "\ufeff",
  "▁",
  "Ġ",
  "<0xZZ>",
  "null",
  "NaN",
];
const TYPES = ["Sequence", "BPE", "Split", "ByteLevel", "Metaspace", "Replace", "Unigram", "LORA", "llama", "default"];

/** Deeper documents are mutated as bytes only: a Worker's JSON.stringify recurses. */
const MAX_TREE_DEPTH = 1000;

/**
 * How deeply brackets nest in JSON text (strings skipped), without parsing it.
 *
 * @example
 * ```ts
 * import { jsonDepth } from "./mutate_json.ts";
 * jsonDepth('{"a": [1, "]]"]}'); // 2
 * ```
 */
export function jsonDepth(text: string): number {
  let depth = 0, deepest = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** A value of an arbitrary kind, shallow enough to serialize. */
function interesting(rng: Rng): Json {
  switch (rng.int(0, 9)) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
    case 3:
      return pick(rng, NUMBERS) * (rng.next() < 0.2 ? -1 : 1);
    case 4:
      return pick(rng, STRINGS);
    case 5:
      return pick(rng, TYPES);
    case 6:
      return "x".repeat(rng.int(1, 4) === 1 ? rng.int(1000, 100_000) : rng.int(2, 40));
    case 7:
      return pick<Json>(rng, [[], {}, [null], [1, 2], ["a", "b"], { type: null }, { toString: 1 }, { valueOf: {} }]);
    case 8:
      return { [pick(rng, STRINGS)]: pick(rng, NUMBERS) };
    default:
      return [pick(rng, STRINGS), pick(rng, NUMBERS)];
  }
}

/** A string changed a little: a character inserted, dropped or replaced, or regex syntax added. */
function tweakString(rng: Rng, s: string): string {
  const i = rng.int(0, s.length);
  switch (rng.int(0, 4)) {
    case 0:
      return s.slice(0, i) + pick(rng, STRINGS) + s.slice(i);
    case 1:
      return s.slice(0, i) + s.slice(i + rng.int(1, 3));
    case 2:
      return s.slice(0, i) + String.fromCharCode(rng.int(0, 0xffff)) + s.slice(i + 1);
    case 3:
      return s + s;
    default:
      return s.slice(0, i);
  }
}

/** A number changed a little: off by one, by half, negated, scaled by a power of two. */
function tweakNumber(rng: Rng, n: number): number {
  return pick(rng, [n + 1, n - 1, n + 0.5, -n, n * 2 ** rng.int(1, 64), n / 2, Math.floor(n / 3)]);
}

/**
 * Deep nests are spliced into the text after serializing: JSON.stringify
 * recurses and a Worker's stack is small. The document holds a marker string
 * where the nest goes; `deep` holds the text that replaces it.
 */
interface Deep {
  texts: string[];
}

/** A marker for deep.texts[k]. */
function marker(deep: Deep, text: string): string {
  deep.texts.push(text);
  return `@@deep-${deep.texts.length - 1}@@`;
}

/** The JSON text of `v` nested `depth` levels deep in arrays or objects, as a marker. */
function deepNest(rng: Rng, deep: Deep, v: Json, depth: number): string {
  const [open, close] = rng.next() < 0.5 ? ["[", "]"] : ['{"a":', "}"];
  return marker(deep, open.repeat(depth) + (JSON.stringify(v) ?? "null") + close.repeat(depth));
}

/** The JSON text of container `v` nested inside itself at `key`, `depth` times, as a marker. */
function selfNest(deep: Deep, v: Container, key: string | number, depth: number): string {
  const copy: Container = Array.isArray(v) ? [...v] : { ...v };
  set(copy, key, "@@hole@@");
  const [pre, post] = JSON.stringify(copy).split('"@@hole@@"');
  // At most about 1 MB of text: deep enough to overflow a recursive reader, small enough to stay cheap.
  const times = Math.min(depth, Math.ceil(1_000_000 / (pre.length + post.length + 1)));
  return marker(deep, pre.repeat(times) + JSON.stringify(get(v, key)) + post.repeat(times));
}

/** The text of `doc` with every marker replaced (markers may sit inside one another's texts). */
function serialize(doc: Json, deep: Deep, indent: number | undefined): string {
  let text = JSON.stringify(doc, null, indent) ?? "null";
  for (let k = deep.texts.length - 1; k >= 0; k--) text = text.replace(`"@@deep-${k}@@"`, () => deep.texts[k]);
  return text;
}

/** A deep copy (deep nests are marker strings until serialized, so the recursion stays shallow). */
function clone(v: Json): Json {
  return v === undefined ? null : JSON.parse(JSON.stringify(v));
}

/** A random path from the root: at each container, stop or step into a random child. */
function randomSpot(rng: Rng, root: { doc: Json }): { parent: Container; key: string | number } {
  let parent: Container = root as unknown as Container;
  let key: string | number = "doc";
  for (;;) {
    const v = get(parent, key);
    if (!isContainer(v)) break;
    const keys = keysOf(v);
    if (keys.length === 0 || rng.next() < 0.25) break;
    parent = v;
    key = pick(rng, keys);
  }
  return { parent, key };
}

/** One structural mutation of the document in `root.doc`, in place. */
function mutateOnce(rng: Rng, root: { doc: Json }, deep: Deep): void {
  const { parent, key } = randomSpot(rng, root);
  const v = get(parent, key);
  switch (rng.int(0, 11)) {
    case 0:
    case 1:
      return set(parent, key, interesting(rng));
    case 2:
      if (typeof v === "string") return set(parent, key, tweakString(rng, v));
      if (typeof v === "number") return set(parent, key, tweakNumber(rng, v));
      return set(parent, key, interesting(rng));
    case 3: // delete
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else if (parent !== (root as unknown)) delete (parent as Record<string, Json>)[key];
      return;
    case 4: { // add or rename a key, add or duplicate an element
      if (!isContainer(v)) return set(parent, key, [v]);
      if (Array.isArray(v)) {
        if (v.length > 0) v.splice(rng.int(0, v.length), 0, pick(rng, v));
        else v.push(interesting(rng));
        return;
      }
      const keys = Object.keys(v);
      if (keys.length > 0 && rng.next() < 0.5) {
        const old = pick(rng, keys);
        const renamed = rng.next() < 0.5 ? tweakString(rng, old) : pick(rng, STRINGS);
        const moved = v[old];
        delete v[old];
        set(v, renamed, moved);
      } else {
        set(v, pick(rng, [...STRINGS, ...TYPES]), interesting(rng));
      }
      return;
    }
    case 5: // wrap or unwrap
      if (isContainer(v) && rng.next() < 0.5) {
        const keys = keysOf(v);
        return set(parent, key, keys.length > 0 ? get(v, pick(rng, keys)) : null);
      }
      return set(parent, key, rng.next() < 0.5 ? [v] : { type: v });
    case 6: // an array for an object and back
      if (Array.isArray(v)) return set(parent, key, Object.fromEntries(v.map((x, i) => [String(i), x])));
      if (isContainer(v)) return set(parent, key, Object.values(v));
      return set(parent, key, interesting(rng));
    case 7: { // copy another part of the document here
      const other = randomSpot(rng, root);
      return set(parent, key, clone(get(other.parent, other.key)));
    }
    case 8: // nest deeply: recursion in the parser must be bounded
      return set(parent, key, deepNest(rng, deep, v, rng.next() < 0.5 ? rng.int(2, 64) : rng.int(1000, 20_000)));
    case 9: // the container nested inside itself, again and again (Sequence inside Sequence ...)
      if (!isContainer(v) || keysOf(v).length === 0) return set(parent, key, interesting(rng));
      return set(parent, key, selfNest(deep, v, pick(rng, keysOf(v)), rng.int(2, rng.next() < 0.5 ? 40 : 5000)));
    case 10: // swap two siblings
      if (isContainer(v) && keysOf(v).length > 1) {
        const keys = keysOf(v);
        const a = pick(rng, keys), b = pick(rng, keys);
        const t = get(v, a);
        set(v, a, get(v, b));
        set(v, b, t);
      }
      return;
    default: // shrink an array or an object to a few entries
      if (Array.isArray(v)) v.length = rng.int(0, Math.min(3, v.length));
      else if (isContainer(v)) { for (const k of Object.keys(v).slice(rng.int(0, 3))) delete v[k]; }
      return;
  }
}

/**
 * Applies `count` structural mutations to a copy of `doc` (given as its JSON
 * text, which is parsed afresh) and returns the new text: compact or
 * indented, and sometimes damaged at the text level (a duplicate key, a cut,
 * bytes that are not UTF-8, trailing garbage).
 *
 * @example
 * ```ts
 * import { Rng } from "../reference/random.ts";
 * import { mutateJson } from "./mutate_json.ts";
 * mutateJson(new Rng(3), '{"r": 8, "target_modules": ["q_proj"]}', 2).length > 0;
 * ```
 */
export function mutateJson(rng: Rng, docText: string, count: number): Uint8Array {
  // A document already nested deep (by an earlier round) would overflow JSON.stringify: damage its bytes instead.
  if (jsonDepth(docText) > MAX_TREE_DEPTH) return mutateBytes(rng, new TextEncoder().encode(docText));
  const root = { doc: JSON.parse(docText) as Json };
  const deep: Deep = { texts: [] };
  for (let i = 0; i < count; i++) mutateOnce(rng, root, deep);
  let text = serialize(root.doc, deep, rng.next() < 0.3 ? 2 : undefined);
  const r = rng.next();
  if (r < 0.05) {
    // JSON allows a key twice; the last one wins.
    const at = text.indexOf("{");
    if (at >= 0) {
      text = text.slice(0, at + 1) + `${JSON.stringify(pick(rng, STRINGS))}:${JSON.stringify(interesting(rng))},` +
        text.slice(at + 1);
    }
  } else if (r < 0.08) {
    text = "\ufeff" + text;
  } else if (r < 0.1) {
    text += pick(rng, [" // comment", "}", ",", "\u0000", " garbage"]);
  }
  const bytes = new TextEncoder().encode(text);
  return rng.next() < 0.15 ? mutateBytes(rng, bytes) : bytes;
}

/**
 * The offsets (in UTF-8 bytes) of the structural characters of JSON text:
 * where a cut leaves an object, array, key or string open.
 *
 * @example
 * ```ts
 * import { jsonOffsets } from "./mutate_json.ts";
 * jsonOffsets('{"a": [1]}'); // [0, 1, 3, 4, 6, 8, 9]
 * ```
 */
export function jsonOffsets(text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  const out: number[] = [];
  bytes.forEach((b, i) => {
    if (b === 0x7b || b === 0x7d || b === 0x5b || b === 0x5d || b === 0x2c || b === 0x3a || b === 0x22) out.push(i);
  });
  return out;
}
