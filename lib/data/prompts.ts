/**
 * Prompts that turn classification into an instruction: the seed's templates
 * exactly, or a user's template file, with optional few-shot exemplars.
 *
 * The seed's inference prompt (`generate_inference_prompt`) is
 *
 * ```text
 * Classify the text into {labels_str} and return the answer as the exact text label.
 * text: {text}
 * label:
 * ```
 *
 * and its training text is the same followed by `" " + gold_label`
 * (`generate_supervised_prompt`). `labels_str` is `", ".join(labels)`, as the
 * seed's `build_prompts` makes it. So a training example is a prompt (the
 * inference prompt) plus a completion (a space and the answer; the loss falls
 * on the completion and the EOS after it). In multi-label mode the answer is
 * the labels in label-set order joined by ", ".
 *
 * A template file holds the inference prompt with the placeholders
 * `{labels_str}` (any number of times) and `{text}` (exactly once); `{{` and
 * `}}` are literal braces, as in Python's `str.format`. The completion is
 * `" " + answer`, or just the answer when the template ends in whitespace.
 *
 * Few-shot exemplars repeat the template's last part (from the start of the
 * line that holds `{text}` to the end) once per exemplar, with its answer,
 * between the instruction and the text to classify:
 *
 * ```text
 * Classify the text into ham, spam and return the answer as the exact text label.
 * text: Lunch tomorrow?.
 * label: ham
 * text: WIN A PRIZE.
 * label: spam
 * text: {text}
 * label:
 * ```
 *
 * @module
 */

import { DataError } from "./errors.ts";

/** The seed's inference template. */
export const SEED_TEMPLATE =
  "Classify the text into {labels_str} and return the answer as the exact text label.\ntext: {text}\nlabel:";

/** A worked example shown in the prompt before the text to classify. */
export interface Exemplar {
  /** The exemplar's text. */
  text: string;
  /** Its answer (a label, or comma-separated labels in multi-label mode). */
  answer: string;
}

type Segment = string | { field: "text" | "labels_str" };

/**
 * Parses `{name}` placeholders and `{{` / `}}` escapes; `where` names the
 * source in errors. `textAt` is the offset of the last `{text}` (-1: none).
 */
function parseSegments(source: string, where: string): { segments: Segment[]; textAt: number } {
  const out: Segment[] = [];
  let textAt = -1;
  let literal = "";
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if ((c === "{" || c === "}") && source[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === "{") {
      const close = source.indexOf("}", i);
      const name = close < 0 ? "" : source.slice(i + 1, close);
      if (name !== "text" && name !== "labels_str") {
        const shown = close < 0 ? source.slice(i, i + 20) : source.slice(i, close + 1);
        throw new DataError(
          `unknown placeholder ${
            JSON.stringify(shown)
          }; a template knows {text} and {labels_str} (write {{ and }} for literal braces)`,
          { file: where },
        );
      }
      if (literal) out.push(literal);
      literal = "";
      out.push({ field: name });
      if (name === "text") textAt = i;
      i = close;
    } else if (c === "}") {
      throw new DataError('a single "}" outside a placeholder; write }} for a literal brace', { file: where });
    } else literal += c;
  }
  if (literal) out.push(literal);
  return { segments: out, textAt };
}

function render(segments: readonly Segment[], text: string, labelsStr: string): string {
  let s = "";
  for (const seg of segments) s += typeof seg === "string" ? seg : seg.field === "text" ? text : labelsStr;
  return s;
}

/**
 * A prompt template bound to a label set (and, optionally, exemplars).
 *
 * @example
 * ```ts
 * import { PromptTemplate } from "./prompts.ts";
 * const p = PromptTemplate.seed(["ham", "spam"]);
 * p.prompt("Hello.");
 * // "Classify the text into ham, spam and return the answer as the exact text label.\ntext: Hello.\nlabel:"
 * p.completion("ham"); // " ham"
 * ```
 */
export class PromptTemplate {
  /** The inference template's source text. */
  readonly source: string;
  /** The labels, in order; `labelsStr` is them joined by ", ". */
  readonly labels: readonly string[];
  /** The few-shot exemplars shown before each text (none by default). */
  readonly exemplars: readonly Exemplar[];
  /** `{labels_str}` as the seed builds it: `", ".join(labels)`. */
  readonly labelsStr: string;
  readonly #where: string;
  readonly #head: Segment[];
  readonly #item: Segment[];
  readonly #answerSeparator: string;
  readonly #shots: string;

  /**
   * Parses `source` (placeholders `{labels_str}`, `{text}` once); `where`
   * names the template in errors (a file name).
   */
  constructor(source: string, labels: readonly string[], exemplars: readonly Exemplar[] = [], where = "template") {
    const { segments, textAt } = parseSegments(source, where);
    const texts = segments.filter((s) => typeof s !== "string" && s.field === "text").length;
    if (texts !== 1) {
      throw new DataError(`the template must hold {text} exactly once, it holds it ${texts} times`, { file: where });
    }
    // The repeated part starts at the line holding {text}; a newline never sits inside a placeholder or an escape.
    const itemStart = source.lastIndexOf("\n", textAt) + 1;
    this.source = source;
    this.labels = labels;
    this.exemplars = exemplars;
    this.labelsStr = labels.join(", ");
    this.#where = where;
    this.#head = parseSegments(source.slice(0, itemStart), where).segments;
    this.#item = parseSegments(source.slice(itemStart), where).segments;
    this.#answerSeparator = /\s$/.test(source) ? "" : " ";
    this.#shots = exemplars
      .map((e) => render(this.#item, e.text, this.labelsStr) + this.#answerSeparator + e.answer + "\n")
      .join("");
  }

  /**
   * The seed's template for `labels`.
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * PromptTemplate.seed(["a", "b"]).labelsStr; // "a, b"
   * ```
   */
  static seed(labels: readonly string[], exemplars: readonly Exemplar[] = []): PromptTemplate {
    return new PromptTemplate(SEED_TEMPLATE, labels, exemplars, "the seed template");
  }

  /**
   * Reads a template file (UTF-8; one trailing newline is dropped, so the
   * prompt ends where the model should answer).
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/t.txt`, "Is this {labels_str}?\n{text}\nAnswer:\n");
   * (await PromptTemplate.fromFile(`${dir}/t.txt`, ["ham", "spam"])).prompt("Hi");
   * // "Is this ham, spam?\nHi\nAnswer:"
   * ```
   */
  static async fromFile(
    path: string,
    labels: readonly string[],
    exemplars: readonly Exemplar[] = [],
  ): Promise<PromptTemplate> {
    let source: string;
    try {
      source = await Deno.readTextFile(path);
    } catch (e) {
      throw new DataError(`cannot read the template: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    return new PromptTemplate(source.replace(/\r?\n$/, ""), labels, exemplars, path);
  }

  /**
   * The same template with other exemplars.
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * PromptTemplate.seed(["ham", "spam"]).withExemplars([{ text: "Hi.", answer: "ham" }]).exemplars.length; // 1
   * ```
   */
  withExemplars(exemplars: readonly Exemplar[]): PromptTemplate {
    return new PromptTemplate(this.source, this.labels, exemplars, this.#where);
  }

  /**
   * The inference prompt for `text`: everything the model reads before it
   * answers.
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * PromptTemplate.seed(["ham", "spam"]).prompt("Hi.").endsWith("text: Hi.\nlabel:"); // true
   * ```
   */
  prompt(text: string): string {
    return render(this.#head, text, this.labelsStr) + this.#shots + render(this.#item, text, this.labelsStr);
  }

  /**
   * The training completion for `answer`: what follows the prompt (the
   * seed's `" " + label`).
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * PromptTemplate.seed(["ham", "spam"]).completion("spam"); // " spam"
   * ```
   */
  completion(answer: string): string {
    return this.#answerSeparator + answer;
  }

  /**
   * The whole training text, prompt then completion, as the seed's
   * `generate_supervised_prompt` builds it.
   *
   * @example
   * ```ts
   * import { PromptTemplate } from "./prompts.ts";
   * PromptTemplate.seed(["ham", "spam"]).trainingText("Hi.", "ham").endsWith("text: Hi.\nlabel: ham"); // true
   * ```
   */
  trainingText(text: string, answer: string): string {
    return this.prompt(text) + this.completion(answer);
  }
}
