/**
 * Decoders of tokenizer.json: the token strings of an id sequence -> text.
 * Each step maps a list of strings to a list of strings, as HF's
 * `decode_chain`; the result is their concatenation. ByteLevel turns the byte
 * alphabet back into UTF-8; ByteFallback turns runs of <0xNN> tokens into the
 * characters they spell (U+FFFD per byte when they spell none).
 *
 * @module
 */

import { appendByteLevelBytes } from "./bytelevel.ts";
import { type ComponentJson, components, field, pattern, unsupported } from "./json.ts";
import { compileHfPattern } from "./regex.ts";

/** One decoding step over the token strings. */
export type Decoder = (tokens: string[]) => string[];

const KINDS = ["Sequence", "ByteLevel", "ByteFallback", "Fuse", "Replace", "Strip", "Metaspace"] as const;
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
// ignoreBOM keeps a leading U+FEFF, as Rust's from_utf8 does.
const lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Builds the decoder a tokenizer.json component describes (null: tokens are
 * joined with spaces, as HF does without a decoder).
 *
 * @example
 * ```ts
 * import { buildDecoder } from "./decode.ts";
 * const d = buildDecoder({ type: "ByteLevel" });
 * d(["Hello", "Ġw", "orld"]).join(""); // "Hello world"
 * ```
 */
export function buildDecoder(json: ComponentJson | null | undefined): Decoder {
  if (!json) return (tokens) => [tokens.join(" ")];
  switch (json.type) {
    case "Sequence": {
      const steps = components(json, "decoders").map(buildDecoder);
      return (tokens) => steps.reduce((t, step) => step(t), tokens);
    }
    case "ByteLevel":
      return (tokens) => {
        const bytes: number[] = [];
        for (const t of tokens) appendByteLevelBytes(t, bytes);
        return [lossy.decode(new Uint8Array(bytes))];
      };
    case "ByteFallback":
      return byteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Replace": {
      const p = pattern(json);
      const content = field(json, "content", "string");
      if ("literal" in p) return (tokens) => tokens.map((t) => t.replaceAll(p.literal, content));
      const re = compileHfPattern(p.regex);
      return (tokens) => tokens.map((t) => t.replace(re, () => content));
    }
    case "Strip": {
      const content = field(json, "content", "string");
      const start = field(json, "start", "number", 0);
      const stop = field(json, "stop", "number", 0);
      return (tokens) => tokens.map((t) => strip(t, content, start, stop));
    }
    case "Metaspace": {
      const rep = field(json, "replacement", "string", "▁");
      const scheme = field(json, "prepend_scheme", "string", json.add_prefix_space === false ? "never" : "always");
      // The first token loses every replacement character when a prefix was prepended, as in HF.
      return (tokens) => tokens.map((t, i) => t.replaceAll(rep, i === 0 && scheme !== "never" ? "" : " "));
    }
    default:
      throw unsupported("decoder", json.type, KINDS);
  }
}

/** Runs of <0xNN> tokens -> their UTF-8 text, or one U+FFFD per byte when it is not valid UTF-8. */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(strict.decode(new Uint8Array(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push("\ufffd");
    }
    bytes = [];
  };
  for (const t of tokens) {
    const m = t.length === 6 ? BYTE_TOKEN.exec(t) : null;
    if (m) {
      bytes.push(parseInt(m[1], 16));
    } else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

/** Removes up to `start` leading and `stop` trailing copies of `content` (one character). */
function strip(token: string, content: string, start: number, stop: number): string {
  const chars = [...token];
  let from = 0;
  while (from < start && from < chars.length && chars[from] === content) from++;
  let to = chars.length;
  while (chars.length - to < stop && to > from && chars[to - 1] === content) to--;
  return chars.slice(from, to).join("");
}
