/**
 * The Hugging Face hub cache, laid out exactly as huggingface_hub writes it so
 * that each tool reuses the other's downloads:
 *
 * ```
 * <cacheDir>/models--org--name/
 *   blobs/<etag>                      file contents, named by git sha1 or LFS sha256
 *   blobs/<etag>.incomplete           a download in progress (resumable)
 *   refs/main                         the commit hash `main` points to (no newline)
 *   snapshots/<commit>/<file>         relative symlink to ../../blobs/<etag>
 *   .no_exist/<commit>/<file>         empty marker: the repo has no such file
 * <cacheDir>/.locks/models--org--name/<etag>.lock
 * ```
 *
 * Every finished name appears by rename, so no half-written file is ever
 * visible under its final name.
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import { HubError } from "./errors.ts";

const COMMIT = /^[0-9a-f]{40}$/;
// huggingface_hub's repo id rules: [\w.-] names, no "--" or "..", no leading/trailing "-" or ".".
const NAME = /^(?![-.])(?!.*(--|\.\.))[\w.-]{1,96}(?<![-.])$/;

/**
 * Whether `revision` is a full commit hash (40 lowercase hex digits).
 *
 * @example
 * ```ts
 * import { isCommitHash } from "./cache.ts";
 * isCommitHash("main"); // false
 * isCommitHash("a".repeat(40)); // true
 * ```
 */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

/**
 * Whether `id` is a Hub model id of the form `org/name`.
 *
 * @example
 * ```ts
 * import { isRepoId } from "./cache.ts";
 * isRepoId("HuggingFaceTB/SmolLM2-135M-Instruct"); // true
 * isRepoId("./models/x"); // false
 * ```
 */
export function isRepoId(id: string): boolean {
  const parts = id.split("/");
  return parts.length === 2 && parts.every((p) => NAME.test(p));
}

/**
 * Throws unless `filename` is a plain relative path inside a repository
 * (names come from servers and index files, so they must not escape the cache).
 *
 * @example
 * ```ts
 * import { checkRepoFilename } from "./cache.ts";
 * checkRepoFilename("model-00001-of-00002.safetensors"); // ok
 * // checkRepoFilename("../x") throws
 * ```
 */
export function checkRepoFilename(filename: string): void {
  const parts = filename.split("/");
  const bad = filename.includes("\\") || filename.includes("\0") ||
    parts.some((p) => p === "" || p === "." || p === "..");
  if (bad) throw new HubError("invalid", `"${filename}" is not a relative file path inside a repository`);
}

/**
 * The cache folder name of a model repository, e.g. `models--org--name`.
 *
 * @example
 * ```ts
 * import { repoFolderName } from "./cache.ts";
 * repoFolderName("HuggingFaceTB/SmolLM2-135M"); // "models--HuggingFaceTB--SmolLM2-135M"
 * ```
 */
export function repoFolderName(repoId: string): string {
  return ["models", ...repoId.split("/")].join("--");
}

/**
 * Runs a file-system step, turning its failure into a one-line HubError("io") that names the cache.
 *
 * @example
 * ```ts
 * import { cacheIo } from "./cache.ts";
 * await cacheIo("create /tmp/hub/x", "/tmp/hub", () => Deno.mkdir("/tmp/hub/x", { recursive: true }));
 * ```
 */
export async function cacheIo<T>(what: string, cacheDir: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof HubError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new HubError(
      "io",
      `cannot ${what}: ${why}: check free space and write permission under ${cacheDir} (HF_HOME or HF_HUB_CACHE move it)`,
      { cause: e },
    );
  }
}

// A read that finds nothing returns `absent`; any other failure is a cache I/O error.
async function lookup<T>(what: string, cacheDir: string, absent: T, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return absent;
    return await cacheIo(what, cacheDir, () => Promise.reject(e));
  }
}

function tmpName(path: string): string {
  return `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/**
 * One model repository inside the hub cache.
 *
 * @example
 * ```ts
 * import { RepoCache } from "./cache.ts";
 * const cache = new RepoCache("/tmp/hf/hub", "org/name");
 * cache.root; // "/tmp/hf/hub/models--org--name"
 * const commit = await cache.commitFor("main"); // undefined until something was downloaded
 * ```
 */
export class RepoCache {
  /** The hub cache folder. */
  readonly cacheDir: string;
  /** The repository id, `org/name`. */
  readonly repoId: string;
  /** `<cacheDir>/models--org--name`. */
  readonly root: string;

  /** Addresses `repoId` inside `cacheDir`; nothing is touched on disk yet. */
  constructor(cacheDir: string, repoId: string) {
    if (!isRepoId(repoId)) {
      throw new HubError(
        "invalid",
        `"${repoId}" is not a Hub model id: expected org/name, e.g. HuggingFaceTB/SmolLM2-135M`,
      );
    }
    this.cacheDir = cacheDir;
    this.repoId = repoId;
    this.root = join(cacheDir, repoFolderName(repoId));
  }

  /** Path of the blob named `etag`. */
  blobPath(etag: string): string {
    // The etag comes from the server and becomes a file name: it must stay one plain name.
    if (!/^[\w.-]+$/.test(etag) || etag.startsWith(".")) {
      throw new HubError("protocol", `the Hub sent an unusable ETag "${etag}": check HF_ENDPOINT`);
    }
    return join(this.root, "blobs", etag);
  }

  /** The snapshot folder of `commit`. */
  snapshotDir(commit: string): string {
    return join(this.root, "snapshots", commit);
  }

  /** Path of `filename` inside the snapshot of `commit`. */
  snapshotPath(commit: string, filename: string): string {
    checkRepoFilename(filename);
    return join(this.snapshotDir(commit), filename);
  }

  /** The commit `revision` stands for: itself when a commit hash, else what refs/<revision> holds, if anything. */
  async commitFor(revision: string): Promise<string | undefined> {
    if (isCommitHash(revision)) return revision;
    checkRepoFilename(revision);
    const path = join(this.root, "refs", revision);
    const commit = await lookup(`read ${path}`, this.cacheDir, "", async () => (await Deno.readTextFile(path)).trim());
    return isCommitHash(commit) ? commit : undefined;
  }

  /** Records that `revision` points to `commit` (written atomically, without a newline, as huggingface_hub does). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit || (await this.commitFor(revision)) === commit) return;
    const path = join(this.root, "refs", revision);
    await cacheIo(`write ${path}`, this.cacheDir, async () => {
      await Deno.mkdir(dirname(path), { recursive: true });
      const tmp = tmpName(path);
      await Deno.writeTextFile(tmp, commit);
      await Deno.rename(tmp, path);
    });
  }

  /** The snapshot path of `filename` at `commit` when it is there and readable (a dangling link is not). */
  async cachedFile(commit: string, filename: string): Promise<string | undefined> {
    const path = this.snapshotPath(commit, filename);
    const isFile = await lookup(`read ${path}`, this.cacheDir, false, async () => (await Deno.stat(path)).isFile);
    return isFile ? path : undefined;
  }

  /** Whether a previous lookup found that the repo has no `filename` at `commit`. */
  async isMarkedMissing(commit: string, filename: string): Promise<boolean> {
    checkRepoFilename(filename);
    const path = join(this.root, ".no_exist", commit, filename);
    return await lookup(`read ${path}`, this.cacheDir, false, async () => (await Deno.stat(path), true));
  }

  /** Remembers that the repo has no `filename` at `commit`, so later lookups skip the network. */
  async markMissing(commit: string, filename: string): Promise<void> {
    checkRepoFilename(filename);
    const path = join(this.root, ".no_exist", commit, filename);
    await cacheIo(`write ${path}`, this.cacheDir, async () => {
      await Deno.mkdir(dirname(path), { recursive: true });
      await Deno.writeFile(path, new Uint8Array());
    });
  }

  /** Whether the finished blob `etag` is present. */
  async hasBlob(etag: string): Promise<boolean> {
    const path = this.blobPath(etag);
    return await lookup(`read ${path}`, this.cacheDir, false, async () => (await Deno.stat(path)).isFile);
  }

  /** Points snapshots/<commit>/<filename> at blobs/<etag> with a relative symlink, replacing any old link atomically. */
  async linkSnapshot(etag: string, commit: string, filename: string): Promise<string> {
    const blob = this.blobPath(etag);
    const pointer = this.snapshotPath(commit, filename);
    await cacheIo(`link ${pointer}`, this.cacheDir, async () => {
      await Deno.mkdir(dirname(pointer), { recursive: true });
      const tmp = tmpName(pointer);
      await Deno.symlink(relative(dirname(pointer), blob), tmp);
      await Deno.rename(tmp, pointer);
    });
    return pointer;
  }

  /**
   * Runs `step` holding the lock file huggingface_hub uses for blob `etag`
   * (an exclusive flock), so two processes never write one `.incomplete`.
   */
  async withBlobLock<T>(etag: string, step: () => Promise<T>): Promise<T> {
    const path = join(this.cacheDir, ".locks", repoFolderName(this.repoId), `${etag}.lock`);
    const file = await cacheIo(`open the lock ${path}`, this.cacheDir, async () => {
      await Deno.mkdir(dirname(path), { recursive: true });
      return await Deno.open(path, { write: true, create: true });
    });
    try {
      await file.lock(true);
      return await step();
    } finally {
      file.close(); // closing releases the lock
    }
  }
}
