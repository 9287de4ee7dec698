// `lorac data arxiv` against a local HTTP server on 127.0.0.1 that answers arXiv API queries from feeds this test
// writes: paging, primary categories, cross-lists and duplicates, retries, API errors.
import assert from "node:assert/strict";
import { ArxivQueryError, buildArxivDataset, parseArxivFeed } from "../lib/data/builders/arxiv.ts";
import { readExamples } from "../lib/data/examples.ts";

interface Paper {
  id: string;
  title: string;
  abstract: string;
  primary: string;
  categories: string[];
}

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** An arXiv API Atom feed, as export.arxiv.org writes it. */
function feed(papers: Paper[], total: number): string {
  const entries = papers.map((p) =>
    `  <entry>
    <id>http://arxiv.org/abs/${p.id}</id>
    <updated>2024-01-02T00:00:00Z</updated>
    <title>${xmlEscape(p.title)}</title>
    <summary>${xmlEscape(p.abstract)}</summary>
    <author><name>A. Author</name></author>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="${p.primary}" scheme="http://arxiv.org/schemas/atom"/>
${p.categories.map((c) => `    <category term="${c}" scheme="http://arxiv.org/schemas/atom"/>`).join("\n")}
  </entry>`
  );
  return `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">ArXiv Query</title>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">${total}</opensearch:totalResults>
${entries.join("\n")}
</feed>`;
}

/** Papers listed under cat:<category>: own papers, plus a cross-list from `other` every fourth. */
function listing(category: string, other: string, n: number, idBase: number): Paper[] {
  const out: Paper[] = [];
  for (let i = 0; i < n; i++) {
    const cross = i % 4 === 3;
    const primary = cross ? other : category;
    out.push({
      id: `2401.${idBase + i}v${1 + (i % 2)}`,
      title: `  ${primary} paper ${i}:\n   a <study> & more  `,
      abstract: `We study ${primary} topic ${i}, with "quotes", commas,\n and newlines.`,
      primary,
      categories: cross ? [other, category] : [category, other],
    });
  }
  return out;
}

/** Serves the listings; `quirks` inject failures by request number (1-based). */
async function withServer(
  listings: Record<string, Paper[]>,
  quirks: { status503?: number[]; emptyAt?: number[]; errorFeed?: boolean },
  fn: (baseUrl: string, requests: URLSearchParams[]) => Promise<void>,
): Promise<void> {
  const requests: URLSearchParams[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const q = new URL(req.url).searchParams;
    requests.push(q);
    const n = requests.length;
    if (quirks.status503?.includes(n)) return new Response("busy", { status: 503, statusText: "Service Unavailable" });
    if (quirks.errorFeed) {
      return new Response(
        feed([], 1).replace(
          "</feed>",
          "<entry><id>http://arxiv.org/api/errors#incorrect_id_format</id><title>Error</title>" +
            "<summary>incorrect id format for 1234</summary></entry></feed>",
        ),
      );
    }
    const all = listings[(q.get("search_query") ?? "").replace(/^cat:/, "")] ?? [];
    const start = Number(q.get("start")), size = Number(q.get("max_results"));
    const page = quirks.emptyAt?.includes(n) ? [] : all.slice(start, start + size);
    return new Response(feed(page, all.length), { headers: { "content-type": "application/atom+xml" } });
  });
  await fn(`http://127.0.0.1:${server.addr.port}/api/query`, requests);
}

const clPapers = listing("cs.CL", "cs.LG", 16, 10000);
const listings = {
  "cs.CL": clPapers,
  // cs.LG also lists, first, a cs.CL paper's id in another version, and a cs.CL paper's text under a new id:
  // both are duplicates (were either kept, its title would not start with its label).
  "cs.LG": [
    { ...clPapers[1], id: "2401.10001v7", title: "cs.LG copy of an id", primary: "cs.LG" },
    { ...clPapers[0], id: "2401.99999v1", primary: "cs.LG" },
    ...listing("cs.LG", "cs.CL", 16, 20000),
  ],
};

Deno.test("arxiv builder: primary categories only, no duplicates, seeded 80/10/10 split, paging", async () => {
  await withServer(listings, {}, async (baseUrl, requests) => {
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    const results = [];
    for (const outDir of dirs) {
      results.push(
        await buildArxivDataset({
          categories: ["cs.CL", "cs.LG"],
          perClass: 10,
          outDir,
          baseUrl,
          pageSize: 5,
          delayMs: 0,
        }),
      );
    }
    assert.deepEqual(results[0].counts, {
      train: { "cs.CL": 8, "cs.LG": 8 },
      validation: { "cs.CL": 1, "cs.LG": 1 },
      test: { "cs.CL": 1, "cs.LG": 1 },
    });
    for (const name of ["train", "validation", "test"]) {
      assert.equal(
        await Deno.readTextFile(`${dirs[0]}/${name}.csv`),
        await Deno.readTextFile(`${dirs[1]}/${name}.csv`),
        `${name}.csv is the same for the same seed`,
      );
    }
    const options = { textFields: ["title", "abstract"], labelColumn: "label_name" };
    const rows = (await Promise.all(["train", "validation", "test"].map((n) =>
      readExamples(`${dirs[0]}/${n}.csv`, options)
    )))
      .flat();
    assert.equal(rows.length, 20);
    assert.equal(new Set(rows.map((r) => r.text)).size, 20, "no paper twice");
    for (const r of rows) {
      // The title names the paper's primary category: a cross-list never carries the other label.
      assert.ok(r.text.startsWith(`${r.gold} paper `), r.text);
      assert.match(
        r.text,
        /^\S+ paper \d+: a <study> & more\. We study \S+ topic \d+, with "quotes", commas, and newlines\.$/,
      );
    }
    // cs.CL: 10 own papers need 13 listed (every fourth is a cross-list): pages of 5 at 0, 5, 10.
    const first = requests.slice(0, 3).map((q) => [q.get("search_query"), q.get("start"), q.get("max_results")]);
    assert.deepEqual(first, [["cat:cs.CL", "0", "5"], ["cat:cs.CL", "5", "5"], ["cat:cs.CL", "10", "5"]]);
    assert.ok(requests.every((q) => q.get("sortBy") === "submittedDate" && q.get("sortOrder") === "descending"));
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  });
});

Deno.test("arxiv builder: HTTP errors and empty pages inside the results are retried", async () => {
  await withServer(listings, { status503: [1], emptyAt: [3] }, async (baseUrl, requests) => {
    const outDir = await Deno.makeTempDir();
    const log: string[] = [];
    const r = await buildArxivDataset({
      categories: ["cs.CL", "cs.LG"],
      perClass: 5,
      outDir,
      baseUrl,
      pageSize: 4,
      delayMs: 0,
      log: (l) => log.push(l),
    });
    assert.equal(r.requests, requests.length);
    assert.ok(log.some((l) => /HTTP 503 Service Unavailable; retrying$/.test(l)), log.join("\n"));
    assert.equal(requests[2].get("start"), requests[3].get("start"), "the empty page is asked again");
    assert.deepEqual(
      Object.values(r.counts).reduce((a, c) => a + (c["cs.CL"] ?? 0) + (c["cs.LG"] ?? 0), 0),
      10,
    );
    await Deno.remove(outDir, { recursive: true });
  });
});

Deno.test("arxiv builder: an API error feed stops at once; a short category warns and writes what it has", async () => {
  await withServer(listings, { errorFeed: true }, async (baseUrl, requests) => {
    await assert.rejects(
      buildArxivDataset({ categories: ["cs.CL", "cs.LG"], perClass: 5, outDir: "/nonexistent", baseUrl, delayMs: 0 }),
      (e) =>
        e instanceof ArxivQueryError && e.message === "the arXiv API refused the query: incorrect id format for 1234",
    );
    assert.equal(requests.length, 1, "not retried");
  });
  await withServer(
    { "cs.CL": listing("cs.CL", "x", 6, 100), "hep-ph": listing("hep-ph", "x", 40, 200) },
    {},
    async (baseUrl) => {
      const outDir = await Deno.makeTempDir();
      const log: string[] = [];
      const r = await buildArxivDataset({
        categories: ["cs.CL", "hep-ph"],
        perClass: 20,
        outDir,
        baseUrl,
        delayMs: 0,
        log: (l) => log.push(l),
      });
      assert.ok(
        log.includes("arxiv: warning: only 5 papers with primary category cs.CL (asked for 20)"),
        log.join("\n"),
      );
      assert.equal(r.counts.train["cs.CL"] + r.counts.validation["cs.CL"] + r.counts.test["cs.CL"], 5);
      assert.equal(r.counts.train["hep-ph"] + r.counts.validation["hep-ph"] + r.counts.test["hep-ph"], 20);
      await Deno.remove(outDir, { recursive: true });
    },
  );
});

Deno.test("arxiv builder: the feed parser reads ids, versions, entities and categories", () => {
  const f = parseArxivFeed(feed([{
    id: "hep-ph/0101001v4",
    title: "Quarks &amp; gluons",
    abstract: " x ",
    primary: "hep-ph",
    categories: ["hep-ph", "hep-ex"],
  }], 7));
  assert.equal(f.total, 7);
  assert.deepEqual(f.papers, [{
    id: "hep-ph/0101001",
    title: "Quarks &amp; gluons",
    abstract: "x",
    primaryCategory: "hep-ph",
    categories: ["hep-ph", "hep-ex"],
  }]);
});
