/**
 * Normalizers of tokenizer.json: text -> text before pre-tokenization. The
 * SentencePiece-style ones (Llama 2, TinyLlama) are `Prepend("▁")` then
 * `Replace(" ", "▁")`; the Unicode forms and lowercasing are here for
 * tokenizers that add them.
 *
 * @module
 */

import { type ComponentJson, components, field, pattern, unsupported } from "./json.ts";
import { compileHfPattern, WHITE_SPACE_CLASS } from "./regex.ts";

/** Rewrites one piece of text (a stretch between added tokens). */
export type Normalizer = (text: string) => string;

const KINDS = ["Sequence", "Prepend", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip"] as const;
const LEADING_SPACE = new RegExp(`^[${WHITE_SPACE_CLASS}]+`, "u");
const TRAILING_SPACE = new RegExp(`[${WHITE_SPACE_CLASS}]+$`, "u");

/**
 * Builds the normalizer a tokenizer.json component describes (null: none).
 *
 * @example
 * ```ts
 * import { buildNormalizer } from "./normalize.ts";
 * const n = buildNormalizer({
 *   type: "Sequence",
 *   normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }],
 * });
 * n?.("Hello world"); // "▁Hello▁world"
 * ```
 */
export function buildNormalizer(json: ComponentJson | null | undefined): Normalizer | undefined {
  if (!json) return undefined;
  switch (json.type) {
    case "Sequence": {
      const steps = components(json, "normalizers").map(buildNormalizer).filter((n) => n !== undefined);
      return (text) => steps.reduce((t, step) => step(t), text);
    }
    case "Prepend": {
      const prefix = field(json, "prepend", "string");
      return (text) => (text.length > 0 ? prefix + text : text);
    }
    case "Replace": {
      const p = pattern(json);
      const content = field(json, "content", "string");
      if ("literal" in p) return (text) => text.replaceAll(p.literal, content);
      const re = compileHfPattern(p.regex);
      return (text) => text.replace(re, () => content);
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = json.type;
      return (text) => text.normalize(form);
    }
    case "Lowercase":
      return (text) => text.toLowerCase();
    case "Strip": {
      const left = field(json, "strip_left", "boolean", false);
      const right = field(json, "strip_right", "boolean", false);
      return (text) => {
        if (left) text = text.replace(LEADING_SPACE, "");
        if (right) text = text.replace(TRAILING_SPACE, "");
        return text;
      };
    }
    default:
      throw unsupported("normalizer", json.type, KINDS);
  }
}
