/**
 * Fuzzing in CI: a fixed-seed run of every input parser (a few thousand
 * mutated inputs each; bench/fuzz_bench.ts runs 100,000), every kept
 * regression input, and proof that the harness itself catches each kind of
 * failure. Each case must be accepted, or refused with the parser's own error
 * class in one line that names the file; nothing may leak, loop or crash.
 */

import assert from "node:assert/strict";
import { parseCsv } from "../lib/data/csv.ts";
import { runFuzz } from "./fuzz/runner.ts";
import { TARGETS } from "./fuzz/targets.ts";
import { caseSeed } from "./fuzz/case_seed.ts";
import { FIXTURES, FOUND_AT, readFixtures, RECIPES } from "./fuzz/regressions.ts";
import { PLANTED, TARGETS as PLANTED_TARGETS } from "./fuzz/selftest_targets.ts";
import { Rng } from "./reference/random.ts";

const CASES = 1500;
const SEED = 20251125;
/** A seed whose 30 planted cases hold every kind of outcome, one hang among them. */
const PLANTED_SEED = 0;

const fixtures = await readFixtures();

for (const name of Object.keys(TARGETS)) {
  const target = TARGETS[name];
  const kept = [
    ...(fixtures.get(name) ?? []),
    ...RECIPES.filter(([t]) => t === name).map(([, file, , build]) => ({ file, input: build() })),
    ...target.sweep(await target.seeds()).map((input) => ({ file: `a cut of ${input.length} bytes`, input })),
  ];
  const found = FOUND_AT.filter(([t]) => t === name).map(([, seed]) => seed);
  Deno.test(
    `fuzz: ${name}: ${kept.length + found.length} regression cases and seed cuts, ${CASES} mutated inputs: each ` +
      "accepted or refused with a one-line typed error",
    async () => {
      const r = await runFuzz({
        target: name,
        inputs: kept.map((f) => f.input),
        caseSeeds: found,
        cases: CASES,
        seed: SEED,
      });
      const where = (index: number) => (index < kept.length ? kept[index].file : `case ${index}`);
      const failures = r.failures.map((f) => `${where(f.index)} seed 0x${f.seed.toString(16)}: ${f.what}`);
      assert.equal(
        r.failureCount,
        0,
        `${r.failureCount} failures (deno task bench:fuzz --replay ${name}:<seed>)\n${failures.join("\n")}`,
      );
      assert.equal(r.cases, kept.length + found.length + CASES);
      // Both outcomes must occur, or the mutators stopped reaching past the first check (or all is refused).
      const refused = Object.values(r.refused).reduce((a, b) => a + b, 0);
      assert.ok(r.ok > CASES / 50 && refused > CASES / 2, `ok ${r.ok}, refused ${JSON.stringify(r.refused)}`);
    },
  );
}

Deno.test("fuzz: every kept regression input is listed with the failure it caught", () => {
  const files = [...fixtures.values()].flat().map((f) => f.file).sort();
  assert.deepEqual(files, Object.keys(FIXTURES).sort());
});

Deno.test("fuzz: CSV rows keep their line numbers after multi-byte characters and lone CRs", () => {
  // Found while fuzzing: csv-parse counts bytes, lines were counted in UTF-16 units; a lone CR was field data.
  const cases: [string, string, number[]][] = [
    ["multi-byte text before a row", "a,b\nü😀ü😀ü😀ü😀ü😀ü😀,x\n\n\n\ny,z\n", [2, 6]],
    ["a lone CR ends a record, as in pandas", "a,b\n1,2\r3,4\n5,6\n", [2, 3, 4]],
    ["CR-only line ends count as lines", "a,b\r1,2\r\r3,4\r", [2, 4]],
  ];
  for (const [what, text, lines] of cases) {
    assert.deepEqual(parseCsv(text, "f.csv").rows.map((r) => r.line), lines, what);
  }
});

Deno.test("fuzz: the runner reports leaks, bad messages, accepted garbage, memory hogs and hangs, with their seeds", async () => {
  const module = new URL("./fuzz/selftest_targets.ts", import.meta.url).href;
  const seed = PLANTED_SEED, cases = 30;
  const planted = PLANTED_TARGETS.planted;
  const kinds = Array.from({ length: cases }, (_, i) => PLANTED[planted.mutate(new Rng(caseSeed(seed, i)), null)[0]]);
  const count = (k: string) => kinds.filter((x) => x === k).length;
  assert.ok(PLANTED.every((k) => count(k) > 0), `the seed must plant every kind: ${kinds}`);
  const r = await runFuzz({ module, target: "planted", cases, seed, caseTimeoutMs: 300 });
  assert.equal(r.cases, cases);
  assert.equal(r.ok, count("ok"));
  assert.equal(r.refused.PlantedError, count("refused"));
  assert.equal(r.failureCount, cases - count("ok") - count("refused"));
  const expected: Record<string, RegExp> = {
    leak: /^leak: TypeError: Cannot read properties of null/,
    "two lines": /^message: PlantedError message spans several lines/,
    "no file name": /^message: PlantedError message does not start with the file name \(planted\.bin\)/,
    invariant: /^invariant: garbage accepted/,
    hog: /^memory: 10\d\d MB allocated for an input of 1 bytes/,
    hang: /^timeout: the case ran longer than 300 ms/,
  };
  for (const [kind, what] of Object.entries(expected)) {
    const found = r.failures.filter((f) => what.test(f.what));
    assert.ok(found.length > 0, `${kind} not reported: ${r.failures.map((f) => f.what).join("; ")}`);
    for (const f of found) {
      assert.equal(kinds[f.index], kind, `${kind} reported at case ${f.index}`);
      assert.equal(f.seed, caseSeed(seed, f.index));
    }
    assert.ok(found.some((f) => f.input && PLANTED[f.input[0]] === kind), `the input of a ${kind} is kept`);
  }
});

Deno.test("fuzz: a case seed makes the same input every time", async () => {
  for (const target of Object.values(TARGETS)) {
    const corpus = await target.seeds();
    for (let i = 0; i < 30; i++) {
      const seed = caseSeed(SEED, i);
      assert.deepEqual(target.mutate(new Rng(seed), corpus), target.mutate(new Rng(seed), corpus), target.name);
    }
  }
});
