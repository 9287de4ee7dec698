/**
 * The training and validation sets of a run, from CSV files to token ids:
 * rows to examples (text fields joined, gold label checked against the label
 * set: lib/data), the prompt template (the seed's, or a file, with optional
 * few-shot exemplars), then each example to prompt + completion ids
 * (sft_examples.ts).
 *
 * @module
 */

import { checkGold, type Example, labelSet, readExamples } from "../data/examples.ts";
import { pickExemplars } from "../data/few_shot.ts";
import { formatLabels, splitLabels } from "../data/labels.ts";
import { PromptTemplate } from "../data/prompts.ts";
import type { TextTokenizer } from "../data/truncate.ts";
import { dataPath, type ResolvedTrainOptions } from "./options.ts";
import { buildSftExample, type SftExample } from "./sft_examples.ts";

/** A run's data, ready to pack. */
export interface SftData {
  /** The label set, in order. */
  readonly labels: readonly string[];
  /** The prompt template (with its exemplars). */
  readonly template: PromptTemplate;
  /** Training examples. */
  readonly train: readonly SftExample[];
  /** Validation examples, or null without a validation file. */
  readonly validation: readonly SftExample[] | null;
  /** Examples whose text was shortened to fit max_seq_length (training and validation). */
  readonly truncated: number;
  /** Each label's completion ids after a prompt (EOS included), for label scoring; null in multi-label mode. */
  readonly labelCompletions: readonly (readonly number[])[] | null;
}

type DataOptions = Pick<
  ResolvedTrainOptions,
  | "basePath"
  | "trainFile"
  | "valFile"
  | "labelColumn"
  | "textFields"
  | "labels"
  | "multiLabel"
  | "templateFile"
  | "fewShot"
  | "seed"
  | "maxSeqLength"
>;

/**
 * Reads, checks and tokenizes the training (and validation) CSV files.
 *
 * @example
 * ```ts
 * import { prepareSftData } from "./dataset.ts";
 * import { resolveTrainOptions } from "./options.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.csv`, "text,label\nWin a prize now,spam\nLunch at noon?,ham\n");
 * // A toy tokenizer: BOS 1, then one id per character.
 * const tokenizer = {
 *   encode: (s: string, o?: { addSpecialTokens?: boolean }) =>
 *     [...(o?.addSpecialTokens === false ? [] : [1]), ...[...s].map((c) => c.charCodeAt(0))],
 *   decode: (ids: number[]) => String.fromCharCode(...ids.filter((i) => i > 2)),
 * };
 * const options = resolveTrainOptions({ outputDir: "out", basePath: dir, valFile: null, textFields: ["text"], labelColumn: "label" });
 * const data = await prepareSftData(options, tokenizer, 2);
 * data.labels; // ["ham", "spam"]
 * data.labelCompletions; // [[32, 104, 97, 109, 2], [32, 115, 112, 97, 109, 2]]: " ham", " spam", EOS
 * ```
 */
export async function prepareSftData(options: DataOptions, tokenizer: TextTokenizer, eosId: number): Promise<SftData> {
  const columns = { textFields: options.textFields, labelColumn: options.labelColumn };
  const multiLabel = options.multiLabel;
  const trainPath = dataPath(options.basePath, options.trainFile);
  const trainRows = await readExamples(trainPath, columns);
  const labels = labelSet(trainRows, { labels: options.labels, multiLabel });
  checkGold(trainRows, labels, trainPath, { multiLabel });
  const exemplars = options.fewShot > 0
    ? pickExemplars(trainRows, labels, { perLabel: options.fewShot, seed: options.seed, multiLabel })
    : [];
  const template = options.templateFile
    ? await PromptTemplate.fromFile(options.templateFile, labels, exemplars)
    : PromptTemplate.seed(labels, exemplars);
  let truncated = 0;
  const tokenize = (rows: readonly Example[]) =>
    rows.map((row) => {
      const gold = row.gold as string; // checkGold made sure every row has one
      const answer = multiLabel ? formatLabels(splitLabels(gold), labels) : gold;
      const ex = buildSftExample(row.text, answer, {
        format: template,
        tokenizer,
        eosId,
        maxSeqLength: options.maxSeqLength,
      });
      if (ex.truncated) truncated++;
      return ex;
    });
  const train = tokenize(trainRows);
  // The prompt ends before the answer, so a label's completion ids do not depend on the text before it.
  const labelCompletions = multiLabel ? null : labels.map((label) => {
    const ex = buildSftExample(trainRows[0].text, label, {
      format: template,
      tokenizer,
      eosId,
      maxSeqLength: options.maxSeqLength,
    });
    return ex.tokens.slice(ex.completionStart);
  });
  let validation: SftExample[] | null = null;
  if (options.valFile !== null) {
    const valPath = dataPath(options.basePath, options.valFile);
    const valRows = await readExamples(valPath, columns);
    checkGold(valRows, labels, valPath, { multiLabel });
    validation = tokenize(valRows);
  }
  return { labels, template, train, validation, truncated, labelCompletions };
}
