/**
 * `lorac data arxiv`: a title + abstract → primary-category dataset built
 * from the arXiv API (the seed's arXiv demo, from the source): for each
 * category, `search_query=cat:<category>` newest first, page by page, until
 * `perClass` papers whose PRIMARY category (`arxiv:primary_category`) is that
 * category are found; cross-listed papers (another primary) are skipped and
 * a paper is kept once (by arXiv id without version, and by its text). Then
 * a seeded stratified 80/10/10 split into train.csv, validation.csv and
 * test.csv with the columns `title,abstract,label_name`, so training takes
 * the seed's defaults unchanged.
 *
 * Politeness: one request at a time, `delayMs` (default 3 s, as arXiv's API
 * terms ask) between requests; HTTP errors and the API's occasional empty
 * pages are retried a few times. The Atom feed is parsed with npm linkedom.
 *
 * @module
 */

import { DOMParser } from "linkedom";
import {
  type LabelledRow,
  SEED_FRACTIONS,
  SEED_SPLIT_SEED,
  splitAndWrite,
  type SplitFractions,
  type SplitResult,
} from "./split.ts";

/** The arXiv API endpoint. */
export const ARXIV_API = "https://export.arxiv.org/api/query";

/** One paper of an arXiv Atom feed. */
export interface ArxivPaper {
  /** The arXiv id without version ("2401.01234", "hep-ph/0101001"). */
  id: string;
  /** The title, whitespace collapsed. */
  title: string;
  /** The abstract, whitespace collapsed. */
  abstract: string;
  /** The primary category (`arxiv:primary_category`). */
  primaryCategory: string;
  /** All categories, primary first as arXiv lists them. */
  categories: string[];
}

/** A parsed page of results. */
export interface ArxivFeed {
  /** `opensearch:totalResults`: how many papers the query matches, when the feed says. */
  total: number | undefined;
  /** The papers of this page. */
  papers: ArxivPaper[];
}

/**
 * The arXiv API answered a query with an error feed (a malformed query, an
 * unknown parameter): asking again will not help.
 *
 * @example
 * ```ts
 * import { ArxivQueryError } from "./arxiv.ts";
 * new ArxivQueryError("the arXiv API refused the query: bad start").name; // "ArxivQueryError"
 * ```
 */
export class ArxivQueryError extends Error {
  /** Wraps the API's message. */
  constructor(message: string) {
    super(message);
    this.name = "ArxivQueryError";
  }
}

/** The little of a DOM element the feed parser reads (linkedom's elements have it). */
interface XmlElement {
  tagName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
}

const collapse = (s: string | null | undefined) => (s ?? "").replace(/\s+/g, " ").trim();
const localName = (tag: string) => tag.slice(tag.indexOf(":") + 1);

/**
 * Parses an arXiv API Atom feed. An error feed (the API's way of refusing a
 * query) throws with the API's message.
 *
 * @example
 * ```ts
 * import { parseArxivFeed } from "./arxiv.ts";
 * const feed = parseArxivFeed(`<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
 *   <entry><id>http://arxiv.org/abs/2401.01234v2</id><title>A  title</title><summary> Text.</summary>
 *   <arxiv:primary_category term="cs.CL"/><category term="cs.CL"/><category term="cs.LG"/></entry></feed>`);
 * feed.papers[0]; // { id: "2401.01234", title: "A title", abstract: "Text.", primaryCategory: "cs.CL", categories: ["cs.CL", "cs.LG"] }
 * ```
 */
export function parseArxivFeed(xml: string): ArxivFeed {
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const totalText = [...doc.querySelectorAll("*")].find((e) => localName(e.tagName) === "totalResults")
    ?.textContent;
  const papers: ArxivPaper[] = [];
  for (const entry of [...doc.getElementsByTagName("entry")]) {
    const fields = new Map<string, XmlElement[]>();
    for (const child of [...entry.children] as XmlElement[]) {
      const name = localName(child.tagName);
      if (!fields.has(name)) fields.set(name, []);
      fields.get(name)!.push(child);
    }
    const text = (name: string) => collapse(fields.get(name)?.[0]?.textContent);
    const idUrl = text("id");
    if (idUrl.includes("/api/errors")) {
      throw new ArxivQueryError(`the arXiv API refused the query: ${text("summary") || idUrl}`);
    }
    const id = idUrl.replace(/^https?:\/\/arxiv\.org\/abs\//, "").replace(/v\d+$/, "");
    const categories = (fields.get("category") ?? []).map((c) => c.getAttribute("term") ?? "").filter((c) => c);
    const primary = fields.get("primary_category")?.[0]?.getAttribute("term") ?? categories[0] ?? "";
    papers.push({ id, title: text("title"), abstract: text("summary"), primaryCategory: primary, categories });
  }
  return { total: totalText ? Number(totalText) : undefined, papers };
}

/** Options of {@link buildArxivDataset}. */
export interface ArxivBuildOptions {
  /** arXiv categories, one label each ("cs.CL", "hep-ph", ...). */
  categories: readonly string[];
  /** Papers per category. */
  perClass: number;
  /** Folder for train.csv, validation.csv, test.csv (made if missing). */
  outDir: string;
  /** Split seed (default 42, the seed's). */
  seed?: number;
  /** Split shares (default the seed's 80/10/10). */
  fractions?: SplitFractions;
  /** API endpoint (default {@link ARXIV_API}; tests point it at a local server). */
  baseUrl?: string;
  /** Results per request (default 100). */
  pageSize?: number;
  /** Milliseconds between requests (default 3000). */
  delayMs?: number;
  /** Tries per request before giving up (default 4). */
  tries?: number;
  /** Progress and warnings, one line each (default: silent). */
  log?: (line: string) => void;
}

/** What {@link buildArxivDataset} wrote, and how many API requests it made. */
export interface ArxivBuildResult extends SplitResult {
  /** API requests made. */
  requests: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Downloads papers from the arXiv API and writes the three split CSVs.
 *
 * @example
 * ```ts ignore
 * import { buildArxivDataset } from "./arxiv.ts";
 * const r = await buildArxivDataset({ categories: ["cs.CL", "hep-ph"], perClass: 200, outDir: "data/arxiv2" });
 * console.log(r.counts.train);
 * ```
 */
export async function buildArxivDataset(options: ArxivBuildOptions): Promise<ArxivBuildResult> {
  const baseUrl = options.baseUrl ?? ARXIV_API;
  const pageSize = options.pageSize ?? 100;
  const delayMs = options.delayMs ?? 3000;
  const tries = options.tries ?? 4;
  const log = options.log ?? (() => {});
  if (options.categories.length < 2) throw new RangeError("name at least two arXiv categories (one label each)");
  if (!Number.isInteger(options.perClass) || options.perClass < 1) {
    throw new RangeError(`papers per category must be a whole number >= 1, got ${options.perClass}`);
  }
  let requests = 0;
  const fetchPage = async (url: string): Promise<ArxivFeed> => {
    let last = "";
    for (let attempt = 0; attempt < tries; attempt++) {
      if (requests > 0) await sleep(delayMs * 2 ** attempt);
      requests++;
      try {
        const res = await fetch(url);
        const body = await res.text();
        if (res.ok) return parseArxivFeed(body);
        last = `HTTP ${res.status} ${res.statusText}`;
      } catch (e) {
        // Only the network is retried; a feed the API sends back as an error is final.
        if (e instanceof ArxivQueryError) throw e;
        last = (e as Error).message;
      }
      if (attempt + 1 < tries) log(`arxiv: ${url}: ${last}; retrying`);
    }
    throw new Error(`the arXiv API failed ${tries} times for ${url}: ${last}; try again later or raise the delay`);
  };

  const seenIds = new Set<string>();
  const seenTexts = new Set<string>();
  const rows: LabelledRow[] = [];
  for (const category of options.categories) {
    let start = 0, found = 0, emptyRetries = 0;
    while (found < options.perClass) {
      const query = new URLSearchParams({
        search_query: `cat:${category}`,
        start: String(start),
        max_results: String(pageSize),
        sortBy: "submittedDate",
        sortOrder: "descending",
      });
      const feed = await fetchPage(`${baseUrl}?${query}`);
      if (feed.papers.length === 0) {
        // The API sometimes answers a page inside the results with nothing; asking again usually works.
        if (feed.total !== undefined && start < feed.total && emptyRetries++ < 3) continue;
        break;
      }
      emptyRetries = 0;
      start += feed.papers.length;
      for (const p of feed.papers) {
        if (found === options.perClass) break;
        const key = `${p.title}\n${p.abstract}`.toLowerCase();
        if (p.primaryCategory !== category || seenIds.has(p.id) || seenTexts.has(key)) continue;
        if (!p.title || !p.abstract) continue;
        seenIds.add(p.id);
        seenTexts.add(key);
        rows.push({ label: category, row: [p.title, p.abstract, category] });
        found++;
      }
      log(`arxiv: ${category}: ${found}/${options.perClass} papers`);
    }
    if (found < options.perClass) {
      log(`arxiv: warning: only ${found} papers with primary category ${category} (asked for ${options.perClass})`);
    }
  }
  const written = await splitAndWrite(rows, {
    outDir: options.outDir,
    columns: ["title", "abstract", "label_name"],
    fractions: options.fractions ?? SEED_FRACTIONS,
    seed: options.seed ?? SEED_SPLIT_SEED,
  });
  return { ...written, requests };
}
