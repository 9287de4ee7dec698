/**
 * Finds or builds the native kernel library and opens it with `Deno.dlopen`.
 * One handle per build, shared by every context in the process.
 *
 * @module
 */

import { buildCpu, buildCuda, hasNvcc, type LibraryKind, libraryPath } from "../../cuda/build.ts";
import { type KernelLibrary, symbols } from "./symbols.ts";

/** The ABI version this TypeScript expects (LORAC_ABI_VERSION of cuda/lorac.h). */
export const ABI_VERSION = 2;

/** Thrown when a kernel library cannot be built, found or opened. */
export class LibraryError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LibraryError";
  }
}

const opened = new Map<LibraryKind, KernelLibrary>();

async function ensureBuilt(kind: LibraryKind): Promise<string> {
  const override = Deno.env.get(kind === "cpu" ? "LORAC_CPU_LIBRARY" : "LORAC_CUDA_LIBRARY");
  if (override) return override;
  if (kind === "cpu") return await buildCpu({ quiet: true });
  if (await hasNvcc()) return await buildCuda();
  // No compiler here: use a library built elsewhere if one is in place.
  const path = libraryPath("cuda");
  try {
    await Deno.stat(path);
    return path;
  } catch {
    throw new LibraryError(`libcudakernels is missing: no nvcc to build it and no ${path}`);
  }
}

/**
 * Opens (building first if needed) the `cpu` or `cuda` kernel library.
 *
 * @example
 * ```ts
 * import { loadLibrary } from "./loader.ts";
 * const lib = await loadLibrary("cpu");
 * lib.symbols.lorac_abi_version(); // 1
 * ```
 */
export async function loadLibrary(kind: LibraryKind): Promise<KernelLibrary> {
  const cached = opened.get(kind);
  if (cached) return cached;
  let path: string;
  try {
    path = await ensureBuilt(kind);
  } catch (e) {
    if (e instanceof LibraryError) throw e;
    throw new LibraryError(`cannot build lib${kind}kernels: ${(e as Error).message}`, { cause: e });
  }
  // libgomp reads this when the library loads. Spinning threads (its default)
  // make short parallel regions 5-10x slower whenever another process shares
  // the cores; sleeping costs little when they don't.
  if (Deno.env.get("OMP_WAIT_POLICY") === undefined) Deno.env.set("OMP_WAIT_POLICY", "passive");
  let lib: KernelLibrary;
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (e) {
    throw new LibraryError(`cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  const version = lib.symbols.lorac_abi_version();
  if (version !== ABI_VERSION) {
    lib.close();
    throw new LibraryError(`${path} has ABI ${version}, expected ${ABI_VERSION}: run \`deno task build\``);
  }
  opened.set(kind, lib);
  return lib;
}
