/**
 * CSV rows to classification examples, as the seed's `combine_text_fields`
 * builds them:
 *
 * - the text is the `--text_fields` columns of the row, in the order given;
 *   a field that is blank (or absent from a short row) is skipped; each
 *   field is stripped of surrounding whitespace; the fields are joined with
 *   ". " and a final "." is added unless the text already ends with one.
 *   So `title="Attention", abstract="We propose X."` gives
 *   `"Attention. We propose X."`. This is the seed's rule verbatim, so our
 *   prompts are byte for byte the seed's (including its `"Why?. Because."`
 *   when a field ends in other punctuation).
 * - a row whose text fields are all blank is an error (the seed would train
 *   on a prompt with no text); a named column missing from the header is an
 *   error listing the columns the file has (the seed skips it silently, which
 *   hides a misspelt column).
 * - the gold label is the `--label_column` cell, trimmed.
 *
 * In training every gold label must be in the label set ({@link checkGold});
 * in prediction a gold label outside it is kept and the metrics count the row
 * as wrong.
 *
 * @module
 */

import { columnIndex, type CsvTable, readCsv } from "./csv.ts";
import { DataError } from "./errors.ts";
import { describe } from "../util/describe.ts";
import { checkLabelSet, labelsFromGold, parseLabelList, splitLabels } from "./labels.ts";

/** The seed's default `--text_fields`. */
export const DEFAULT_TEXT_FIELDS: readonly string[] = ["title", "abstract"];
/** The seed's default `--label_column`. */
export const DEFAULT_LABEL_COLUMN = "label_name";

/** One row of a CSV as a classification example. */
export interface Example {
  /** The 1-based line of the file where the row starts (for error messages). */
  line: number;
  /** The text fields joined into one text. */
  text: string;
  /** The label cell, trimmed (comma-separated labels in multi-label mode); null when no label column was asked for. */
  gold: string | null;
}

/** Which columns make an example. */
export interface ExampleOptions {
  /** Columns joined into the text, in order (`--text_fields`). */
  textFields: readonly string[];
  /** The gold label column (`--label_column`), or null for unlabelled data (prediction only). */
  labelColumn: string | null;
}

/**
 * Joins text fields as the seed does: skip missing or blank fields, strip
 * each, join with ". ", end with "." unless the text already does. All blank
 * gives "".
 *
 * @example
 * ```ts
 * import { joinTextFields } from "./examples.ts";
 * joinTextFields(["  Attention ", undefined, "We propose X."]); // "Attention. We propose X."
 * joinTextFields(["Spam subject", ""]); // "Spam subject."
 * ```
 */
export function joinTextFields(values: readonly (string | undefined)[]): string {
  const parts = values.map((v) => (v ?? "").trim()).filter((v) => v !== "");
  if (parts.length === 0) return "";
  const text = parts.join(". ");
  return text.endsWith(".") ? text : text + ".";
}

/**
 * Turns a parsed CSV into examples; a missing column or a row without text is
 * a {@link DataError} naming the file (and line).
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * import { examplesFromTable } from "./examples.ts";
 * const table = parseCsv("title,abstract,label_name\nA,B,cs.CL\n", "train.csv");
 * examplesFromTable(table, { textFields: ["title", "abstract"], labelColumn: "label_name" });
 * // [{ line: 2, text: "A. B.", gold: "cs.CL" }]
 * ```
 */
export function examplesFromTable(table: CsvTable, options: ExampleOptions): Example[] {
  if (options.textFields.length === 0) throw new DataError("--text_fields is empty; name at least one text column");
  const textIdx = options.textFields.map((f) => columnIndex(table, f, "--text_fields"));
  const labelIdx = options.labelColumn === null ? -1 : columnIndex(table, options.labelColumn, "--label_column");
  return table.rows.map(({ line, values }) => {
    const text = joinTextFields(textIdx.map((i) => values[i]));
    if (text === "") {
      throw new DataError(
        `the text fields (${options.textFields.join(", ")}) are all blank; fill one in or remove the row`,
        { file: table.file, line },
      );
    }
    return { line, text, gold: labelIdx < 0 ? null : (values[labelIdx] ?? "").trim() };
  });
}

/**
 * Reads a CSV file and turns it into examples ({@link examplesFromTable}).
 *
 * @example
 * ```ts
 * import { readExamples } from "./examples.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/test.csv`, "subject,body,label_name\nWin!,Click,spam\n");
 * await readExamples(`${dir}/test.csv`, { textFields: ["subject", "body"], labelColumn: "label_name" });
 * // [{ line: 2, text: "Win!. Click.", gold: "spam" }]
 * ```
 */
export async function readExamples(path: string, options: ExampleOptions): Promise<Example[]> {
  return examplesFromTable(await readCsv(path), options);
}

/** Options for choosing the label set. */
export interface LabelSetOptions {
  /** Labels given by the user (`--labels`), in their order; otherwise the sorted labels of the training data. */
  labels?: readonly string[];
  /** Gold cells hold comma-separated labels. */
  multiLabel?: boolean;
}

/**
 * The label set of a training run: `--labels` when given, else the sorted
 * distinct gold labels of the training examples. Checked to have two labels
 * at least (and no commas in multi-label mode).
 *
 * @example
 * ```ts
 * import { labelSet } from "./examples.ts";
 * labelSet([{ line: 2, text: "t", gold: "spam" }, { line: 3, text: "u", gold: "ham" }]); // ["ham", "spam"]
 * ```
 */
export function labelSet(train: readonly Example[], options: LabelSetOptions = {}): string[] {
  const labels = options.labels
    ? parseLabelList(options.labels)
    : labelsFromGold(train.flatMap((e) => (e.gold ? [e.gold] : [])), options);
  checkLabelSet(labels, options);
  return labels;
}

/**
 * Checks the gold labels of training (or validation) examples: each row has
 * a label and every label is in `labels`; otherwise a {@link DataError}
 * naming `file` and the line.
 *
 * @example
 * ```ts
 * import { checkGold } from "./examples.ts";
 * checkGold([{ line: 2, text: "t", gold: "spam" }], ["ham", "spam"], "train.csv"); // no error
 * ```
 */
export function checkGold(
  examples: readonly Example[],
  labels: readonly string[],
  file: string,
  options: { multiLabel?: boolean } = {},
): void {
  const known = new Set(labels);
  for (const { line, gold } of examples) {
    if (gold === null) throw new DataError("training needs gold labels; name the column with --label_column", { file });
    const parts = options.multiLabel ? splitLabels(gold) : [gold];
    if (parts.length === 0 || gold === "") {
      throw new DataError("the label is blank; fill it in or remove the row", { file, line });
    }
    const unknown = parts.find((p) => !known.has(p));
    if (unknown !== undefined) {
      throw new DataError(
        `label ${describe(unknown)} is not one of ${labels.join(", ")}; fix the row or add it to --labels`,
        { file, line },
      );
    }
  }
}
