/**
 * predictions.csv: one row per example, written with npm csv-stringify
 * (RFC 4180: fields holding commas, quotes or newlines are quoted).
 *
 * Columns: `text` (the example's text, as joined from its fields), `gold`
 * (its label cell; empty when the data had none), `pred` (the predicted
 * label, or labels joined by ", "; empty when the answer was invalid),
 * `valid` (true / false: the answer was a label), then `answer` (the raw
 * generated text, in generate mode) and `prob_<label>` per label (score
 * mode), when given. The seed wrote prompt, y_true, y_pred.
 *
 * @module
 */

import { stringify } from "csv-stringify/sync";
import { writeFileAtomic } from "../util/atomic_write.ts";

/** One example's prediction. */
export interface PredictionRow {
  /** The example's text. */
  text: string;
  /** Its gold label cell, or null for unlabelled data. */
  gold: string | null;
  /** The predicted label (or ", "-joined labels), or null when the answer was no label. */
  pred: string | null;
  /** The raw generated answer (generate mode). */
  answer?: string;
  /** Probability of each label, in label order (score mode). */
  probabilities?: readonly number[];
}

/**
 * The predictions.csv text. `labels` names the probability columns; rows
 * carry probabilities and answers all or none.
 *
 * @example
 * ```ts
 * import { predictionsCsv } from "./predictions.ts";
 * predictionsCsv([{ text: "Hi, you", gold: "ham", pred: "ham", probabilities: [0.75, 0.25] }], ["ham", "spam"]);
 * // 'text,gold,pred,valid,prob_ham,prob_spam\n"Hi, you",ham,ham,true,0.75,0.25\n'
 * ```
 */
export function predictionsCsv(rows: readonly PredictionRow[], labels: readonly string[]): string {
  const withAnswer = rows.some((r) => r.answer !== undefined);
  const withProbs = rows.some((r) => r.probabilities !== undefined);
  const header = ["text", "gold", "pred", "valid"];
  if (withAnswer) header.push("answer");
  if (withProbs) header.push(...labels.map((l) => `prob_${l}`));
  const records = rows.map((r, i) => {
    const rec: (string | number)[] = [r.text, r.gold ?? "", r.pred ?? "", String(r.pred !== null)];
    if (withAnswer) rec.push(r.answer ?? "");
    if (withProbs) {
      if (r.probabilities?.length !== labels.length) {
        throw new RangeError(
          `prediction ${i} has ${r.probabilities?.length ?? 0} probabilities for ${labels.length} labels`,
        );
      }
      rec.push(...r.probabilities);
    }
    return rec;
  });
  return stringify([header, ...records]);
}

/**
 * Writes predictions.csv atomically.
 *
 * @example
 * ```ts
 * import { writePredictionsCsv } from "./predictions.ts";
 * const dir = await Deno.makeTempDir();
 * await writePredictionsCsv(`${dir}/predictions.csv`, [{ text: "Win!", gold: "spam", pred: null, answer: "eggs" }], [
 *   "ham",
 *   "spam",
 * ]);
 * ```
 */
export async function writePredictionsCsv(
  path: string,
  rows: readonly PredictionRow[],
  labels: readonly string[],
): Promise<void> {
  await writeFileAtomic(path, predictionsCsv(rows, labels));
}
