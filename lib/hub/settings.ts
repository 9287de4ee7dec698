/**
 * Hub settings read from the same environment variables huggingface_hub reads,
 * so one configuration serves both tools: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE,
 * HF_TOKEN (or the token file `huggingface-cli login` writes), HF_HUB_OFFLINE,
 * HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT.
 *
 * @module
 */

import { join } from "node:path";

/** Everything a download needs to know about where and how. */
export interface HubSettings {
  /** Base URL of the Hub, without a trailing slash (HF_ENDPOINT, default https://huggingface.co). */
  endpoint: string;
  /** The hub cache folder that holds `models--org--name` (HF_HUB_CACHE, else $HF_HOME/hub). */
  cacheDir: string;
  /** Bearer token for gated and private repositories, if any. */
  token: string | undefined;
  /** Cache only, no network (HF_HUB_OFFLINE=1). */
  offline: boolean;
  /** How long to wait for a file's metadata, in ms (HF_HUB_ETAG_TIMEOUT seconds, default 10). */
  etagTimeoutMs: number;
  /** How long a download may stall without a byte, in ms (HF_HUB_DOWNLOAD_TIMEOUT seconds, default 10). */
  downloadTimeoutMs: number;
}

/** Read access to environment variables; `Deno.env` fits. */
export interface Env {
  /** The variable's value, or undefined when unset. */
  get(key: string): string | undefined;
}

// huggingface_hub's `_is_true`.
function isTrue(value: string | undefined): boolean {
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value.toUpperCase());
}

function expandHome(path: string, env: Env): string {
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  if (home === undefined || (path !== "~" && !path.startsWith("~/"))) return path;
  return join(home, path.slice(1));
}

function seconds(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return (Number.isFinite(n) && n > 0 ? n : fallback) * 1000;
}

/**
 * The Hugging Face home folder: HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
 *
 * @example
 * ```ts
 * import { hfHome } from "./settings.ts";
 * hfHome(new Map([["HF_HOME", "/data/hf"]])); // "/data/hf"
 * ```
 */
export function hfHome(env: Env = Deno.env): string {
  const home = env.get("HF_HOME");
  if (home) return expandHome(home, env);
  const xdg = env.get("XDG_CACHE_HOME") || expandHome("~/.cache", env);
  return join(xdg, "huggingface");
}

/**
 * The hub cache folder: HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else `hfHome()/hub`.
 *
 * @example
 * ```ts
 * import { hubCacheDir } from "./settings.ts";
 * hubCacheDir(new Map([["HF_HOME", "/data/hf"]])); // "/data/hf/hub"
 * ```
 */
export function hubCacheDir(env: Env = Deno.env): string {
  const dir = env.get("HF_HUB_CACHE") || env.get("HUGGINGFACE_HUB_CACHE");
  return dir ? expandHome(dir, env) : join(hfHome(env), "hub");
}

function readToken(env: Env): string | undefined {
  const direct = env.get("HF_TOKEN") || env.get("HUGGING_FACE_HUB_TOKEN");
  if (direct) return direct.trim();
  const path = env.get("HF_TOKEN_PATH") ? expandHome(env.get("HF_TOKEN_PATH")!, env) : join(hfHome(env), "token");
  try {
    return Deno.readTextFileSync(path).trim() || undefined;
  } catch {
    return undefined; // no login: anonymous access
  }
}

/**
 * Reads every Hub setting from the environment.
 *
 * @example
 * ```ts
 * import { hubSettings } from "./settings.ts";
 * const s = hubSettings(new Map([["HF_HOME", "/tmp/hf"], ["HF_HUB_OFFLINE", "1"]]));
 * s.cacheDir; // "/tmp/hf/hub"
 * s.offline; // true
 * s.endpoint; // "https://huggingface.co"
 * ```
 */
export function hubSettings(env: Env = Deno.env): HubSettings {
  return {
    endpoint: (env.get("HF_ENDPOINT") || "https://huggingface.co").replace(/\/+$/, ""),
    cacheDir: hubCacheDir(env),
    token: readToken(env),
    offline: isTrue(env.get("HF_HUB_OFFLINE") || env.get("TRANSFORMERS_OFFLINE")),
    etagTimeoutMs: seconds(env.get("HF_HUB_ETAG_TIMEOUT"), 10),
    downloadTimeoutMs: seconds(env.get("HF_HUB_DOWNLOAD_TIMEOUT"), 10),
  };
}
