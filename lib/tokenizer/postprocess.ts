/**
 * Post-processors of tokenizer.json: the special tokens wrapped around an
 * encoded text when `addSpecialTokens` is on (Llama 3 prepends
 * `<|begin_of_text|>` through TemplateProcessing). lorac encodes single
 * sequences, so a template reduces to ids before and ids after.
 *
 * @module
 */

import { type ComponentJson, components, isTokenId, unsupported } from "./json.ts";
import { TOKENIZER_JSON, TokenizerError } from "./errors.ts";
import { describe } from "../util/describe.ts";

/** Ids placed before and after the text's ids. */
export interface Template {
  /** Ids before the text (e.g. BOS). */
  prefix: number[];
  /** Ids after the text (e.g. EOS). */
  suffix: number[];
}

const KINDS = ["TemplateProcessing", "ByteLevel", "Sequence"] as const;

/**
 * The single-sequence template of a post-processor component (null: none).
 *
 * @example
 * ```ts
 * import { buildTemplate } from "./postprocess.ts";
 * buildTemplate({
 *   type: "TemplateProcessing",
 *   single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
 *   special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
 * }); // { prefix: [1], suffix: [] }
 * ```
 */
export function buildTemplate(json: ComponentJson | null | undefined): Template {
  if (!json) return { prefix: [], suffix: [] };
  switch (json.type) {
    case "ByteLevel": // offsets only
      return { prefix: [], suffix: [] };
    case "Sequence":
      // Each processor wraps what the one before produced.
      return components(json, "processors").map(buildTemplate).reduce(
        (inner, outer) => ({ prefix: [...outer.prefix, ...inner.prefix], suffix: [...inner.suffix, ...outer.suffix] }),
        { prefix: [], suffix: [] },
      );
    case "TemplateProcessing":
      return templateProcessing(json);
    default:
      throw unsupported("post-processor", json.type, KINDS);
  }
}

function templateProcessing(json: ComponentJson): Template {
  const fail = (problem: string): never => {
    throw new TokenizerError(TOKENIZER_JSON, `TemplateProcessing.${problem}`);
  };
  const single = json.single;
  const specials = json.special_tokens ?? {};
  if (!Array.isArray(single)) return fail(`single should be a list, found ${describe(single)}`);
  if (typeof specials !== "object" || Array.isArray(specials)) {
    fail(`special_tokens should be an object, found ${describe(specials)}`);
  }
  const template: Template = { prefix: [], suffix: [] };
  let seenText = false;
  for (const item of single as unknown[]) {
    const piece = typeof item === "object" && item !== null ? item as Record<string, unknown> : {};
    const sequence = piece.Sequence as Record<string, unknown> | undefined;
    const special = piece.SpecialToken as Record<string, unknown> | undefined;
    if (typeof sequence === "object" && sequence !== null) {
      if (sequence.id !== "A") fail(`single names sequence ${describe(sequence.id)}; only A exists`);
      seenText = true;
    } else if (typeof special === "object" && special !== null && typeof special.id === "string") {
      const entry = (specials as Record<string, unknown>)[special.id];
      const ids = typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>).ids : undefined;
      if (!Array.isArray(ids) || !ids.every(isTokenId)) {
        fail(`single uses ${describe(special.id)} but special_tokens gives it no token ids`);
      }
      (seenText ? template.suffix : template.prefix).push(...(ids as number[]));
    } else {
      fail(`single item ${describe(item)} is neither {"Sequence": {"id": "A"}} nor {"SpecialToken": {"id": ...}}`);
    }
  }
  return template;
}
