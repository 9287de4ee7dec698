/**
 * Fetches one file of a Hub repository through the standard cache, as
 * huggingface_hub's `hf_hub_download` does: a commit hash already in the cache
 * needs no request; otherwise a HEAD names the commit and blob, an existing
 * blob is linked, a missing one downloaded. Offline (HF_HUB_OFFLINE) or when
 * the Hub cannot be reached, the cached copy of the revision is used.
 *
 * @module
 */

import type { ProgressSink } from "../ui/progress.ts";
import { downloadBlob } from "./blob.ts";
import { checkRepoFilename, isCommitHash, RepoCache } from "./cache.ts";
import { HubError } from "./errors.ts";
import { fetchMetadata, type FileRequest } from "./http.ts";
import { type HubSettings, hubSettings } from "./settings.ts";

/** Options of Hub downloads; unset fields come from the environment ({@linkcode hubSettings}). */
export interface HubOptions extends Partial<HubSettings> {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Progress bars: true (default) draws on stderr, false draws nothing, or a sink of your own. */
  progress?: boolean | ProgressSink;
  /** Where one-line notices go (e.g. falling back to the cache); default stderr. */
  log?: (line: string) => void;
  /** Whether a network failure may be answered from the cache (default true). */
  fallbackToCache?: boolean;
}

/** A file in the cache. */
export interface HubFile {
  /** Its path in the snapshot folder (a symlink into blobs/). */
  path: string;
  /** The commit the revision resolved to. */
  commit: string;
}

/**
 * The settings of `options`, with what it leaves unset taken from the environment.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./download.ts";
 * resolveSettings({ offline: true }).offline; // true
 * ```
 */
export function resolveSettings(options: HubOptions = {}): HubSettings {
  const env = hubSettings();
  return {
    endpoint: (options.endpoint ?? env.endpoint).replace(/\/+$/, ""),
    cacheDir: options.cacheDir ?? env.cacheDir,
    token: options.token ?? env.token,
    offline: options.offline ?? env.offline,
    etagTimeoutMs: options.etagTimeoutMs ?? env.etagTimeoutMs,
    downloadTimeoutMs: options.downloadTimeoutMs ?? env.downloadTimeoutMs,
  };
}

/**
 * The sink a `progress` option stands for: stderr, nothing, or the caller's own.
 *
 * @example
 * ```ts
 * import { progressSink } from "./download.ts";
 * progressSink(false); // undefined
 * progressSink(true) === Deno.stderr; // true
 * ```
 */
export function progressSink(progress: HubOptions["progress"]): ProgressSink | undefined {
  if (progress === false) return undefined;
  return progress === undefined || progress === true ? Deno.stderr : progress;
}

/**
 * The default `log`: one line on stderr.
 *
 * @example
 * ```ts
 * import { logToStderr } from "./download.ts";
 * logToStderr("using the cached config.json of org/name");
 * ```
 */
export function logToStderr(line: string): void {
  console.error(line);
}

async function cachedAt(cache: RepoCache, revision: string, filename: string): Promise<HubFile | undefined> {
  const commit = await cache.commitFor(revision);
  const path = commit && await cache.cachedFile(commit, filename);
  return commit && path ? { path, commit } : undefined;
}

/**
 * Returns the cached path of `filename` from repository `repoId`, downloading it first if needed.
 *
 * @example
 * ```ts
 * import { hubDownload } from "./download.ts";
 * const { path, commit } = await hubDownload("HuggingFaceTB/SmolLM2-135M", "config.json");
 * JSON.parse(await Deno.readTextFile(path)).model_type; // "llama"
 * ```
 */
export async function hubDownload(repoId: string, filename: string, options: HubOptions = {}): Promise<HubFile> {
  checkRepoFilename(filename);
  const s = resolveSettings(options);
  const revision = options.revision ?? "main";
  const cache = new RepoCache(s.cacheDir, repoId);
  const where = `${filename} of ${repoId} (revision ${revision})`;

  const notFound = () =>
    new HubError("file-not-found", `${filename} not found in ${repoId} at revision ${revision} on ${s.endpoint}`);
  if (isCommitHash(revision)) {
    const path = await cache.cachedFile(revision, filename);
    if (path) return { path, commit: revision };
    // A commit never changes: a file once found missing there stays missing.
    if (await cache.isMarkedMissing(revision, filename)) throw notFound();
  }
  if (s.offline) {
    const hit = await cachedAt(cache, revision, filename);
    if (hit) return hit;
    throw new HubError(
      "offline",
      `HF_HUB_OFFLINE is set and ${where} is not in the cache at ${cache.root}: unset HF_HUB_OFFLINE to download it`,
    );
  }

  const req: FileRequest = { endpoint: s.endpoint, repoId, revision, filename, token: s.token };
  let meta;
  try {
    meta = await fetchMetadata(req, s.etagTimeoutMs);
  } catch (e) {
    if (!(e instanceof HubError && e.code === "network") || options.fallbackToCache === false) throw e;
    const hit = await cachedAt(cache, revision, filename);
    if (!hit) {
      throw new HubError(
        "network",
        `${e.message}, and ${where} is not in the cache at ${cache.root}: check the connection or HF_ENDPOINT`,
        { cause: e },
      );
    }
    (options.log ?? logToStderr)(`${e.message}: using the cached ${filename} of ${repoId} (${hit.commit.slice(0, 8)})`);
    return hit;
  }

  if ("missing" in meta) {
    const commit = meta.commit ?? (isCommitHash(revision) ? revision : undefined);
    if (commit) {
      await cache.markMissing(commit, filename);
      await cache.writeRef(revision, commit);
    }
    throw notFound();
  }

  await cache.writeRef(revision, meta.commit);
  const existing = await cache.cachedFile(meta.commit, filename);
  if (existing) return { path: existing, commit: meta.commit };
  const blobPath = cache.blobPath(meta.etag);
  const path = await cache.withBlobLock(meta.etag, async () => {
    // Another process may have finished the blob while we waited for the lock.
    if (!(await cache.hasBlob(meta.etag))) {
      await downloadBlob({
        req,
        meta,
        blobPath,
        cacheDir: s.cacheDir,
        timeoutMs: s.downloadTimeoutMs,
        progress: progressSink(options.progress),
      });
    }
    return await cache.linkSnapshot(meta.etag, meta.commit, filename);
  });
  return { path, commit: meta.commit };
}
