/**
 * What the dataset builders share: a seeded, stratified train / validation /
 * test split (the seed's prepare script splits 80/10/10, stratified by
 * label, seed 42) and writing the three CSVs under the seed's default file
 * names, train.csv, validation.csv and test.csv.
 *
 * @module
 */

import { stringify } from "csv-stringify/sync";
import { writeFileAtomic } from "../../util/atomic_write.ts";
import { shuffled } from "../shuffle.ts";

/** Shares of the data in each split; they must add up to 1. */
export interface SplitFractions {
  /** Training share (the seed: 0.8). */
  train: number;
  /** Validation share (the seed: 0.1). */
  validation: number;
  /** Test share (the seed: 0.1). */
  test: number;
}

/** The seed's 80/10/10 split. */
export const SEED_FRACTIONS: SplitFractions = { train: 0.8, validation: 0.1, test: 0.1 };
/** The seed's split seed (prepare_top_5_arxiver_data.py). */
export const SEED_SPLIT_SEED = 42;

/** The three splits, in the order their files are written. */
export const SPLIT_NAMES = ["train", "validation", "test"] as const;
/** A split's name; its file is `<name>.csv`. */
export type SplitName = (typeof SPLIT_NAMES)[number];

/**
 * Splits `items` per label: each label's items are shuffled with `seed`,
 * then `round(n · test)` go to test, `round(n · validation)` to validation
 * and the rest to train; each split is shuffled again so labels interleave.
 *
 * @example
 * ```ts
 * import { stratifiedSplit } from "./split.ts";
 * const rows = Array.from({ length: 20 }, (_, i) => ({ id: i, label: i % 2 ? "spam" : "ham" }));
 * const s = stratifiedSplit(rows, (r) => r.label, { train: 0.8, validation: 0.1, test: 0.1 }, 42);
 * [s.train.length, s.validation.length, s.test.length]; // [16, 2, 2]
 * ```
 */
export function stratifiedSplit<T>(
  items: readonly T[],
  labelOf: (item: T) => string,
  fractions: SplitFractions,
  seed: number,
): Record<SplitName, T[]> {
  const { train, validation, test } = fractions;
  if ([train, validation, test].some((f) => !(f >= 0)) || Math.abs(train + validation + test - 1) > 1e-9) {
    throw new RangeError(`split fractions must be >= 0 and add up to 1, got ${train}/${validation}/${test}`);
  }
  const byLabel = new Map<string, T[]>();
  for (const item of items) {
    const label = labelOf(item);
    if (!byLabel.has(label)) byLabel.set(label, []);
    byLabel.get(label)!.push(item);
  }
  const out: Record<SplitName, T[]> = { train: [], validation: [], test: [] };
  for (const group of byLabel.values()) {
    const order = shuffled(group, seed);
    const nTest = Math.round(order.length * test);
    const nVal = Math.round(order.length * validation);
    out.test.push(...order.slice(0, nTest));
    out.validation.push(...order.slice(nTest, nTest + nVal));
    out.train.push(...order.slice(nTest + nVal));
  }
  for (const name of SPLIT_NAMES) out[name] = shuffled(out[name], seed + 1);
  return out;
}

/** One row of a built dataset: its CSV fields and its label. */
export interface LabelledRow {
  /** The label (also one of the fields), for stratifying. */
  label: string;
  /** The CSV fields, in column order. */
  row: string[];
}

/** What a builder wrote. */
export interface SplitResult {
  /** The CSV files written: train.csv, validation.csv, test.csv. */
  files: string[];
  /** Rows per split and label. */
  counts: Record<SplitName, Record<string, number>>;
}

/** Options of {@link splitAndWrite}. */
export interface SplitWriteOptions {
  /** Folder for the CSVs (made if missing). */
  outDir: string;
  /** The header. */
  columns: readonly string[];
  /** Split shares. */
  fractions: SplitFractions;
  /** Split seed. */
  seed: number;
}

/**
 * Splits rows with {@link stratifiedSplit} and writes `<outDir>/train.csv`,
 * `validation.csv` and `test.csv` (each atomically) under a header of
 * `columns`.
 *
 * @example
 * ```ts
 * import { splitAndWrite } from "./split.ts";
 * const outDir = await Deno.makeTempDir();
 * const rows = ["ham", "spam", "ham", "spam"].map((label, i) => ({ label, row: [`text ${i}`, label] }));
 * const r = await splitAndWrite(rows, {
 *   outDir,
 *   columns: ["text", "label_name"],
 *   fractions: { train: 1, validation: 0, test: 0 },
 *   seed: 1,
 * });
 * r.counts.train; // { ham: 2, spam: 2 } (keys in the order drawn)
 * ```
 */
export async function splitAndWrite(rows: readonly LabelledRow[], options: SplitWriteOptions): Promise<SplitResult> {
  const splits = stratifiedSplit(rows, (r) => r.label, options.fractions, options.seed);
  await Deno.mkdir(options.outDir, { recursive: true });
  const files: string[] = [];
  const counts = {} as Record<SplitName, Record<string, number>>;
  for (const name of SPLIT_NAMES) {
    const path = `${options.outDir.replace(/\/+$/, "")}/${name}.csv`;
    await writeFileAtomic(path, stringify([[...options.columns], ...splits[name].map((r) => r.row)]));
    files.push(path);
    counts[name] = {};
    for (const r of splits[name]) counts[name][r.label] = (counts[name][r.label] ?? 0) + 1;
  }
  return { files, counts };
}
