// `lorac data arxiv` and `lorac data spam-assassin` as a user runs them: flags to builder options, the three CSVs
// written, a summary that says how to train on them. (The builders themselves: arxiv_builder_test.ts,
// spam_assassin_test.ts.)
import assert from "node:assert/strict";
import { readExamples } from "../lib/data/examples.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

async function lorac(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** An arXiv API feed of `n` papers whose primary category is `category`. */
function feed(category: string, start: number, n: number, total: number): string {
  const entries = Array.from({ length: n }, (_, k) => {
    const i = start + k;
    return `<entry><id>http://arxiv.org/abs/2401.${category.length}${i}v1</id>
<title>${category} paper ${i}</title><summary>About ${category}, number ${i}.</summary>
<arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="${category}"/></entry>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">${total}</opensearch:totalResults>
${entries.join("\n")}</feed>`;
}

Deno.test("cli: data arxiv asks the API given by --base_url and writes the three split CSVs", async () => {
  const asked: string[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const q = new URL(req.url).searchParams;
    asked.push(q.get("search_query")!);
    const category = q.get("search_query")!.replace("cat:", "");
    const start = Number(q.get("start")), max = Number(q.get("max_results"));
    return new Response(feed(category, start, Math.max(0, Math.min(max, 20 - start)), 20));
  });
  const dir = await Deno.makeTempDir({ prefix: "lorac-data-" });
  const base = `http://127.0.0.1:${server.addr.port}/api/query`;
  const r = await lorac(
    ...["data", "arxiv", "--categories", "cs.CL", "hep-ph", "--per_class", "10", "--out_dir", dir],
    ...["--base_url", base, "--delay_ms", "0", "--seed", "7"],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...new Set(asked)], ["cat:cs.CL", "cat:hep-ph"]);
  assert.match(r.stdout, /^\d+ API requests\ntrain: /);
  assert.ok(
    r.stdout.endsWith(
      `train on it: deno task train --base_path ${dir} --text_fields title abstract ` +
        "--output_dir <dir>\n",
    ),
    r.stdout,
  );
  const columns = { textFields: ["title", "abstract"], labelColumn: "label_name" };
  const counts = await Promise.all(["train", "validation", "test"].map(async (s) => {
    const rows = await readExamples(`${dir}/${s}.csv`, columns);
    assert.ok(rows.every((e) => e.text.startsWith(`${e.gold} paper`)), `${s}: title, abstract and label match`);
    return rows.length;
  }));
  assert.deepEqual(counts, [16, 2, 2], "80/10/10 of 10 papers per category");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: data spam-assassin writes subject, body and ham/spam splits; bad flags are one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lorac-data-" });
  const r = await lorac("data", "spam-assassin", "--per_class", "10", "--body_chars", "60", "--out_dir", dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^train: (ham 8, spam 8|spam 8, ham 8)\n/);
  const rows = await readExamples(`${dir}/train.csv`, { textFields: ["subject", "body"], labelColumn: "label_name" });
  assert.equal(rows.length, 16);
  assert.ok(rows.every((e) => e.gold === "ham" || e.gold === "spam"));

  const bad = await lorac("data", "spam-assassin", "--per_class", "0", "--out_dir", `${dir}/never`);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'lorac: --per_class must be a positive integer, got "0"\n');
  await Deno.remove(dir, { recursive: true });
});
