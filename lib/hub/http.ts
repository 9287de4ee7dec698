/**
 * The Hub's HTTP protocol for one file, as huggingface_hub speaks it: a HEAD on
 * `{endpoint}/{repo}/resolve/{revision}/{file}` whose headers name the commit
 * (X-Repo-Commit), the blob (X-Linked-Etag for LFS files, else ETag) and its
 * size (X-Linked-Size, else Content-Length); LFS files answer with a redirect
 * to a CDN, which gets no Authorization header.
 *
 * @module
 */

import { HubError } from "./errors.ts";

/** What a request is about, for URLs and error messages. */
export interface FileRequest {
  /** Hub base URL, no trailing slash. */
  endpoint: string;
  /** `org/name`. */
  repoId: string;
  /** Branch, tag or commit hash. */
  revision: string;
  /** Path of the file inside the repository. */
  filename: string;
  /** Bearer token, if any. */
  token: string | undefined;
}

/** A file's metadata from the HEAD call. */
export interface FileMetadata {
  /** The commit the revision resolved to. */
  commit: string;
  /** The blob name: the LFS sha256 or the git blob sha1. */
  etag: string;
  /** Bytes, when the server said. */
  size: number | undefined;
  /** Where to GET the bytes (a CDN URL for LFS files). */
  location: string;
  /** The expected sha256 of the content: known for LFS files, whose etag is that hash. */
  sha256: string | undefined;
}

/** The repository has no such file at this revision (a 404 that is not about the repo or the revision). */
export interface MissingFile {
  /** Marks the answer. */
  missing: true;
  /** The commit the revision resolved to, when the server said. */
  commit: string | undefined;
}

const MAX_REDIRECTS = 5;

/**
 * The resolve URL of a file, with the revision and each path segment escaped as huggingface_hub does.
 *
 * @example
 * ```ts
 * import { resolveUrl } from "./http.ts";
 * resolveUrl("https://huggingface.co", "org/name", "refs/pr/1", "a b.json");
 * // "https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/a%20b.json"
 * ```
 */
export function resolveUrl(endpoint: string, repoId: string, revision: string, filename: string): string {
  const path = filename.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/**
 * Removes the weak marker and quotes from an ETag header (huggingface_hub's `_normalize_etag`).
 *
 * @example
 * ```ts
 * import { normalizeEtag } from "./http.ts";
 * normalizeEtag('W/"abc"'); // "abc"
 * ```
 */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function describeFailure(e: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs / 1000} s`;
  // Deno says only "fetch failed"; the reason (DNS, refused, TLS) is in the cause.
  const inner = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const message = inner instanceof Error ? inner.message : String(inner);
  return message.replace(/^error sending request for url \([^)]*\): /, "");
}

/**
 * One fetch with a deadline for the headers; a failure to connect becomes HubError("network").
 * Redirects are returned, not followed, so the caller decides where the token goes.
 * `init.signal`, if given, can still abort the body later (a stalled download).
 *
 * @example
 * ```ts
 * import { request } from "./http.ts";
 * const res = await request("https://huggingface.co/api/models/gpt2", {}, 10_000);
 * await res.body?.cancel();
 * ```
 */
export async function request(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  const signal = init.signal ? AbortSignal.any([abort.signal, init.signal]) : abort.signal;
  try {
    return await fetch(url, { ...init, redirect: "manual", signal });
  } catch (e) {
    const origin = new URL(url).origin;
    throw new HubError("network", `cannot reach ${origin}: ${describeFailure(e, timedOut, timeoutMs)}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Request headers for `url`: the token only goes to the Hub's own origin, never to a CDN.
 *
 * @example
 * ```ts
 * import { hubHeaders } from "./http.ts";
 * const req = { endpoint: "https://huggingface.co", repoId: "o/n", revision: "main", filename: "f", token: "hf_x" };
 * hubHeaders("https://cdn-lfs.hf.co/x", req).has("Authorization"); // false
 * ```
 */
export function hubHeaders(url: string, req: FileRequest, extra: Record<string, string> = {}): Headers {
  // identity: the sizes in the headers must be the sizes of the bytes we receive.
  const headers = new Headers({ "Accept-Encoding": "identity", "User-Agent": "lorac", ...extra });
  if (req.token && new URL(url).origin === new URL(req.endpoint).origin) {
    headers.set("Authorization", `Bearer ${req.token}`);
  }
  return headers;
}

function isRelative(location: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith("//");
}

/**
 * Turns a failed response into a one-line HubError that says what to do.
 *
 * @example
 * ```ts
 * import { httpError } from "./http.ts";
 * const req = { endpoint: "https://huggingface.co", repoId: "org/name", revision: "main", filename: "config.json", token: undefined };
 * httpError(new Response(null, { status: 401, headers: { "X-Error-Code": "GatedRepo" } }), req).message;
 * // "org/name is gated or private (HTTP 401): accept its license at https://huggingface.co/org/name and set HF_TOKEN ..."
 * ```
 */
export function httpError(response: Response, req: FileRequest): HubError {
  const status = response.status;
  const code = response.headers.get("X-Error-Code");
  const page = `${req.endpoint}/${req.repoId}`;
  if (code === "RepoNotFound") {
    const hint = req.token
      ? "check the id; if it is private, HF_TOKEN must belong to an account that can see it"
      : "check the id; if it is private, set HF_TOKEN";
    return new HubError(
      "repo-not-found",
      `repository ${req.repoId} not found on ${req.endpoint} (HTTP ${status}): ${hint}`,
    );
  }
  if (code === "RevisionNotFound") {
    return new HubError(
      "revision-not-found",
      `revision "${req.revision}" not found in ${req.repoId} (HTTP ${status}): check the branch, tag or commit`,
    );
  }
  if (code === "GatedRepo" || status === 401 || status === 403) {
    if (!req.token) {
      return new HubError(
        "auth",
        `${req.repoId} is gated or private (HTTP ${status}): accept its license at ${page} and set HF_TOKEN to a read token of that account`,
      );
    }
    if (status === 401) {
      return new HubError(
        "auth",
        `HF_TOKEN was rejected for ${req.repoId} (HTTP 401): check the token at ${req.endpoint}/settings/tokens and accept the license at ${page}`,
      );
    }
    return new HubError(
      "auth",
      `HF_TOKEN has no access to ${req.repoId} (HTTP ${status}): accept its license at ${page} with the token's account (approval may take a while)`,
    );
  }
  if (status === 404) {
    return new HubError(
      "file-not-found",
      `${req.filename} not found in ${req.repoId} at revision ${req.revision} on ${req.endpoint} (HTTP 404)`,
    );
  }
  if (status >= 500 || status === 429 || status === 408) {
    return new HubError("network", `${new URL(req.endpoint).origin} answered HTTP ${status}`);
  }
  const detail = response.headers.get("X-Error-Message");
  return new HubError(
    "protocol",
    `unexpected HTTP ${status} for ${req.filename} of ${req.repoId}${detail ? `: ${detail}` : ""}: check HF_ENDPOINT`,
  );
}

/**
 * HEADs a file's resolve URL and reads its metadata, following only the Hub's
 * own relative redirects (a renamed repo); an absolute redirect is the CDN
 * location of an LFS file, whose headers carry the metadata.
 *
 * @example
 * ```ts
 * import { fetchMetadata } from "./http.ts";
 * const req = { endpoint: "https://huggingface.co", repoId: "HuggingFaceTB/SmolLM2-135M", revision: "main", filename: "config.json", token: undefined };
 * const meta = await fetchMetadata(req, 10_000);
 * if (!("missing" in meta)) console.log(meta.commit, meta.etag, meta.size);
 * ```
 */
export async function fetchMetadata(req: FileRequest, timeoutMs: number): Promise<FileMetadata | MissingFile> {
  let url = resolveUrl(req.endpoint, req.repoId, req.revision, req.filename);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await request(url, { method: "HEAD", headers: hubHeaders(url, req) }, timeoutMs);
    await res.body?.cancel();
    const location = res.headers.get("Location");
    const redirect = res.status >= 300 && res.status < 400 && location !== null;
    if (redirect && isRelative(location)) {
      url = new URL(location, url).href;
      continue;
    }
    const code = res.headers.get("X-Error-Code");
    if (res.status === 404 && code !== "RepoNotFound" && code !== "RevisionNotFound") {
      return { missing: true, commit: res.headers.get("X-Repo-Commit") ?? undefined };
    }
    if (!redirect && !res.ok) throw httpError(res, req);
    const commit = res.headers.get("X-Repo-Commit");
    const linkedEtag = res.headers.get("X-Linked-Etag");
    const etag = linkedEtag ?? res.headers.get("ETag");
    if (commit === null || etag === null) {
      const missing = commit === null ? "X-Repo-Commit" : "ETag";
      throw new HubError(
        "protocol",
        `${url} answered without ${missing}, so it is not a Hugging Face Hub endpoint: check HF_ENDPOINT`,
      );
    }
    const sizeHeader = res.headers.get("X-Linked-Size") ?? (redirect ? null : res.headers.get("Content-Length"));
    const size = sizeHeader === null ? undefined : Number(sizeHeader);
    const name = normalizeEtag(etag);
    return {
      commit,
      etag: name,
      size: size !== undefined && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
      location: redirect ? new URL(location, url).href : url,
      sha256: linkedEtag !== null && /^[0-9a-f]{64}$/.test(name) ? name : undefined,
    };
  }
  throw new HubError("protocol", `more than ${MAX_REDIRECTS} redirects for ${req.filename} of ${req.repoId}`);
}
