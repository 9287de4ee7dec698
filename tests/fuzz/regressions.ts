/**
 * Every input that ever made a parser fail, kept so the bug stays fixed.
 * Fixtures are the input bytes (tests/fuzz/regressions/<target>-<name>.bin,
 * shrunk by minimize.ts or rebuilt small by hand), each listed here with the
 * bug it caught; the case seeds that found them are listed too (with today's
 * mutators a seed may make a different input, so the bytes are what counts).
 * tests/fuzz_test.ts replays both.
 *
 * @module
 */

/** The folder of fixture files. */
export const REGRESSIONS_DIR: URL = new URL("./regressions/", import.meta.url);

/** Fixture file -> the failure it caught, now fixed. */
export const FIXTURES: Readonly<Record<string, string>> = {
  "tokenizer-merge-null.bin": "a null entry of model.merges leaked a TypeError from bpe.ts mergeParts",
  "gguf-rope-freqs-not-positive.bin": "rope_freqs.weight factors of 0 and -1 made RoPE frequencies infinite, negative",
  "csv-c32dde21.bin": "checkGold quoted a 10 kB label cell whole: a 10,660-character error message",
};

/** Case seeds at which the fuzzer found failures: [target, seed, what it found]. */
export const FOUND_AT: readonly (readonly [string, number, string])[] = [
  ["tokenizer", 0xa69da701, "TypeError: Cannot read properties of null (reading 'length') in bpe.ts"],
  ["gguf", 0x4387e620, "invariant: RoPE frequencies Infinity (rope_freqs.weight factor 0)"],
  ["gguf", 0x10cc5613, "invariant: RoPE frequencies negative (rope_freqs.weight factor < 0)"],
  ["csv", 0xc32dde21, "DataError message 10,660 characters long"],
  ["csv", 0x21d4d00f, "a lone CR inside a LF file became a one-field record numbered after the next line"],
];

/**
 * The fixtures in REGRESSIONS_DIR, grouped by target (the file name's prefix).
 *
 * @example
 * ```ts ignore
 * import { readFixtures } from "./regressions.ts";
 * (await readFixtures()).get("csv")?.length;
 * ```
 */
export async function readFixtures(): Promise<Map<string, { file: string; input: Uint8Array }[]>> {
  const byTarget = new Map<string, { file: string; input: Uint8Array }[]>();
  for await (const entry of Deno.readDir(REGRESSIONS_DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".bin")) continue;
    const target = entry.name.slice(0, entry.name.indexOf("-"));
    const list = byTarget.get(target) ?? [];
    list.push({ file: entry.name, input: await Deno.readFile(new URL(entry.name, REGRESSIONS_DIR)) });
    byTarget.set(target, list.sort((a, b) => (a.file < b.file ? -1 : 1)));
  }
  return byTarget;
}
