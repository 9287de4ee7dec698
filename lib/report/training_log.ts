/**
 * The training log the trainer writes (metrics.jsonl: one JSON object per
 * line, each with a `step` and numbers such as `loss`, `eval_loss`,
 * `accuracy`, `learning_rate`) turned into the curves of report.html: every
 * numeric field whose name contains "loss" is a loss curve, every one whose
 * name contains "acc" an accuracy curve; other fields (learning rate,
 * throughput) are not drawn.
 *
 * @module
 */

import { DataError } from "../data/errors.ts";
import type { Series } from "./svg.ts";

/** One line of metrics.jsonl. */
export interface TrainingRecord {
  /** The optimizer step the numbers belong to. */
  step: number;
  /** Any other fields (numbers are drawn when named like a loss or an accuracy). */
  [field: string]: unknown;
}

/**
 * Parses metrics.jsonl text; blank lines are skipped, a line that is not a
 * JSON object with a numeric `step` is a {@link DataError} naming `file`
 * and the line.
 *
 * @example
 * ```ts
 * import { parseTrainingLog } from "./training_log.ts";
 * parseTrainingLog('{"step":1,"loss":2.5}\n{"step":2,"loss":1.9}\n', "metrics.jsonl").length; // 2
 * ```
 */
export function parseTrainingLog(text: string, file: string): TrainingRecord[] {
  const out: TrainingRecord[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`not JSON: ${(e as Error).message}`, { file, line: i + 1 });
    }
    if (typeof value !== "object" || value === null || typeof (value as TrainingRecord).step !== "number") {
      throw new DataError('expected a JSON object with a numeric "step"', { file, line: i + 1 });
    }
    out.push(value as TrainingRecord);
  });
  return out;
}

/**
 * Reads metrics.jsonl ({@link parseTrainingLog}).
 *
 * @example
 * ```ts
 * import { readTrainingLog } from "./training_log.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":1,"loss":2.5}\n');
 * (await readTrainingLog(`${dir}/metrics.jsonl`))[0].loss; // 2.5
 * ```
 */
export async function readTrainingLog(path: string): Promise<TrainingRecord[]> {
  return parseTrainingLog(await Deno.readTextFile(path), path);
}

/** The curves of a training run, by chart. */
export interface TrainingCurves {
  /** Series whose field name contains "loss". */
  loss: Series[];
  /** Series whose field name contains "acc". */
  accuracy: Series[];
}

/**
 * Groups the numeric fields of training records into loss and accuracy
 * curves, one series per field, points in step order.
 *
 * @example
 * ```ts
 * import { trainingCurves } from "./training_log.ts";
 * const c = trainingCurves([{ step: 1, loss: 2 }, { step: 2, loss: 1, eval_loss: 1.2 }, { step: 2, accuracy: 0.6 }]);
 * c.loss.map((s) => s.name); // ["loss", "eval_loss"]
 * c.accuracy[0].points; // [{ x: 2, y: 0.6 }]
 * ```
 */
export function trainingCurves(records: readonly TrainingRecord[]): TrainingCurves {
  const byField = new Map<string, { x: number; y: number }[]>();
  for (const r of records) {
    for (const [field, value] of Object.entries(r)) {
      if (field === "step" || typeof value !== "number" || !Number.isFinite(value)) continue;
      if (!/loss|acc/i.test(field)) continue;
      if (!byField.has(field)) byField.set(field, []);
      byField.get(field)!.push({ x: r.step, y: value });
    }
  }
  const curves: TrainingCurves = { loss: [], accuracy: [] };
  for (const [name, points] of byField) {
    points.sort((a, b) => a.x - b.x);
    (/loss/i.test(name) ? curves.loss : curves.accuracy).push({ name, points });
  }
  return curves;
}
