/**
 * Post-processors of tokenizer.json: the special tokens wrapped around an
 * encoded text when `addSpecialTokens` is on (Llama 3 prepends
 * `<|begin_of_text|>` through TemplateProcessing). lorac encodes single
 * sequences, so a template reduces to ids before and ids after.
 *
 * @module
 */

import { type ComponentJson, components, unsupported } from "./json.ts";

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
  const single = json.single;
  const specials = (json.special_tokens ?? {}) as Record<string, { ids?: unknown }>;
  if (!Array.isArray(single)) throw new TypeError("tokenizer.json: TemplateProcessing.single should be a list");
  const template: Template = { prefix: [], suffix: [] };
  let seenText = false;
  for (const item of single as Record<string, { id?: unknown }>[]) {
    if (item.Sequence) {
      if (item.Sequence.id !== "A") {
        throw new TypeError(
          `tokenizer.json: TemplateProcessing.single names sequence ${item.Sequence.id}; only A exists`,
        );
      }
      seenText = true;
    } else if (item.SpecialToken) {
      const name = String(item.SpecialToken.id);
      const ids = specials[name]?.ids;
      if (!Array.isArray(ids) || ids.some((id) => !Number.isInteger(id))) {
        throw new TypeError(`tokenizer.json: TemplateProcessing uses "${name}" but special_tokens gives it no ids`);
      }
      (seenText ? template.suffix : template.prefix).push(...(ids as number[]));
    } else {
      throw new TypeError(
        `tokenizer.json: TemplateProcessing item ${JSON.stringify(item)} is neither Sequence nor SpecialToken`,
      );
    }
  }
  return template;
}
