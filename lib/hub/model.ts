/**
 * Whole models from the Hub: the files a Llama-family model needs (config,
 * tokenizer, safetensors weights, sharded or not) resolved into one snapshot
 * folder of the standard cache, and {@linkcode resolveModel}, which turns
 * what a user typed (folder, .gguf file or `org/name`) into a local path.
 *
 * A snapshot that already holds every file is used without any request: a
 * model, once downloaded, stays pinned to that commit until `refresh` asks
 * the Hub again. Anything missing goes to the Hub; if it cannot be reached, a
 * cached snapshot with the required files is used with a notice.
 *
 * @module
 */

import { checkRepoFilename, isRepoId, RepoCache } from "./cache.ts";
import { hubDownload, type HubOptions, logToStderr, resolveSettings } from "./download.ts";
import { HubError } from "./errors.ts";

/** A file a model folder holds. */
export interface ModelFile {
  /** Path inside the repository. */
  name: string;
  /** Whether the model works without it. */
  optional: boolean;
}

/** The files fetched besides the weights, in download order. */
export const MODEL_FILES: readonly ModelFile[] = [
  { name: "config.json", optional: false },
  { name: "generation_config.json", optional: true },
  { name: "tokenizer.json", optional: false },
  { name: "tokenizer_config.json", optional: false },
  { name: "special_tokens_map.json", optional: true },
];

/** Single-file weights. */
export const WEIGHTS_FILE = "model.safetensors";
/** The index of sharded weights; its `weight_map` names the shards. */
export const WEIGHTS_INDEX = "model.safetensors.index.json";

/** Options of {@linkcode downloadModel} and {@linkcode resolveModel}. */
export interface ModelOptions extends HubOptions {
  /** Ask the Hub even when the cached snapshot is complete (to follow a moved branch). */
  refresh?: boolean;
}

/**
 * The shard file names of a safetensors index, sorted and checked to stay inside the repository.
 *
 * @example
 * ```ts
 * import { readShardNames } from "./model.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/i.json`, JSON.stringify({ weight_map: { a: "m-2.safetensors", b: "m-1.safetensors" } }));
 * await readShardNames(`${dir}/i.json`); // ["m-1.safetensors", "m-2.safetensors"]
 * ```
 */
export async function readShardNames(indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await Deno.readTextFile(indexPath)) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError("protocol", `cannot read the safetensors index ${indexPath}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const names = map !== null && typeof map === "object" ? Object.values(map) : [];
  if (names.length === 0 || names.some((n) => typeof n !== "string")) {
    throw new HubError("protocol", `${indexPath} has no weight_map of tensor names to shard files`);
  }
  const shards = [...new Set(names as string[])].sort();
  shards.forEach(checkRepoFilename);
  return shards;
}

type SnapshotState =
  /** Every file, optional ones present or known to be absent: no request needed. */
  | "complete"
  /** The required files are there; some optional ones were never looked up. */
  | "usable"
  /** A required file is missing. */
  | "missing";

async function weightsPresent(cache: RepoCache, commit: string): Promise<boolean> {
  if (await cache.cachedFile(commit, WEIGHTS_FILE)) return true;
  const index = await cache.cachedFile(commit, WEIGHTS_INDEX);
  if (!index) return false;
  for (const shard of await readShardNames(index)) {
    if (!(await cache.cachedFile(commit, shard))) return false;
  }
  return true;
}

async function snapshotState(cache: RepoCache, commit: string | undefined): Promise<SnapshotState> {
  if (commit === undefined) return "missing";
  let complete = true;
  for (const { name, optional } of MODEL_FILES) {
    if (await cache.cachedFile(commit, name)) continue;
    if (!optional) return "missing";
    complete &&= await cache.isMarkedMissing(commit, name);
  }
  if (!(await weightsPresent(cache, commit))) return "missing";
  return complete ? "complete" : "usable";
}

async function optionalFile(repoId: string, name: string, options: HubOptions): Promise<boolean> {
  try {
    await hubDownload(repoId, name, options);
    return true;
  } catch (e) {
    if (e instanceof HubError && e.code === "file-not-found") return false;
    throw e;
  }
}

// Every file after the first is asked for at the commit the first resolved to, so they all match.
async function fetchModel(repoId: string, revision: string, options: ModelOptions): Promise<string> {
  const first = await hubDownload(repoId, MODEL_FILES[0].name, { ...options, revision, fallbackToCache: false });
  const pinned: HubOptions = { ...options, revision: first.commit, fallbackToCache: false };
  for (const { name, optional } of MODEL_FILES.slice(1)) {
    if (optional) await optionalFile(repoId, name, pinned);
    else await hubDownload(repoId, name, pinned);
  }
  if (!(await optionalFile(repoId, WEIGHTS_FILE, pinned))) {
    if (!(await optionalFile(repoId, WEIGHTS_INDEX, pinned))) {
      throw new HubError(
        "file-not-found",
        `${repoId} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX} at revision ${revision}: lorac reads safetensors weights only`,
      );
    }
    const index = await hubDownload(repoId, WEIGHTS_INDEX, pinned);
    for (const shard of await readShardNames(index.path)) await hubDownload(repoId, shard, pinned);
  }
  return new RepoCache(resolveSettings(options).cacheDir, repoId).snapshotDir(first.commit);
}

/**
 * Downloads (or finds in the cache) what model `repoId` needs and returns its snapshot folder.
 *
 * @example
 * ```ts
 * import { downloadModel } from "./model.ts";
 * const dir = await downloadModel("HuggingFaceTB/SmolLM2-135M-Instruct");
 * // dir = ~/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/<commit>
 * ```
 */
export async function downloadModel(repoId: string, options: ModelOptions = {}): Promise<string> {
  const s = resolveSettings(options);
  const revision = options.revision ?? "main";
  const cache = new RepoCache(s.cacheDir, repoId);
  const commit = await cache.commitFor(revision);
  const state = await snapshotState(cache, commit);
  if (commit && state === "complete" && !options.refresh) return cache.snapshotDir(commit);
  if (s.offline) {
    if (commit && state !== "missing") return cache.snapshotDir(commit);
    throw new HubError(
      "offline",
      `HF_HUB_OFFLINE is set and ${repoId} (revision ${revision}) is not fully in the cache at ${cache.root}: unset HF_HUB_OFFLINE to download it`,
    );
  }
  try {
    return await fetchModel(repoId, revision, { ...options, ...s });
  } catch (e) {
    if (!(e instanceof HubError && e.code === "network")) throw e;
    if (commit && state !== "missing") {
      (options.log ?? logToStderr)(`${e.message}: using the cached ${repoId} (${commit.slice(0, 8)})`);
      return cache.snapshotDir(commit);
    }
    throw new HubError(
      "network",
      `${e.message}, and ${repoId} (revision ${revision}) is not in the cache at ${cache.root}: check the connection or HF_ENDPOINT`,
      { cause: e },
    );
  }
}

/**
 * Turns a model argument into a local path: an existing folder as is, a `.gguf` file as is,
 * and a Hub id `org/name` into its snapshot folder in the cache (downloading what is missing).
 *
 * @example
 * ```ts
 * import { resolveModel } from "./model.ts";
 * await resolveModel("/work/shared/models/stories260K/hf"); // the folder itself
 * await resolveModel("HuggingFaceTB/SmolLM2-135M-Instruct"); // .../snapshots/<commit>
 * ```
 */
export async function resolveModel(idOrPath: string, options: ModelOptions = {}): Promise<string> {
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(idOrPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new HubError("io", `cannot read ${idOrPath}: ${(e as Error).message}`, { cause: e });
    }
  }
  const gguf = /\.gguf$/i.test(idOrPath);
  if (info?.isDirectory) return idOrPath;
  if (info?.isFile && gguf) return idOrPath;
  const usage = "pass a model folder, a .gguf file or a Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct";
  if (info) throw new HubError("invalid", `${idOrPath} is a file but not a .gguf: ${usage}`);
  if (gguf) throw new HubError("invalid", `GGUF file ${idOrPath} not found`);
  if (!isRepoId(idOrPath)) throw new HubError("invalid", `${idOrPath} is not a folder, a file or a Hub id: ${usage}`);
  try {
    return await downloadModel(idOrPath, options);
  } catch (e) {
    // An id is also a relative path: a mistyped folder ends here, and the message must say so.
    if (e instanceof HubError && ["repo-not-found", "offline", "network"].includes(e.code)) {
      throw new HubError(e.code, `${e.message}; there is no local folder ${idOrPath} either`, { cause: e });
    }
    throw e;
  }
}
