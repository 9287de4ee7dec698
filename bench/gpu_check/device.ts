/**
 * Finds the local NVIDIA GPU and builds libcudakernels for its architecture
 * only (a one-arch build takes a fraction of the full fatbin's time), falling
 * back to the full fatbin when nvcc does not know that architecture.
 *
 * @module
 */

import { buildCuda, buildDir, BuildError, hasNvcc, libraryPath } from "../../cuda/build.ts";

/** The first GPU as nvidia-smi reports it. */
export interface GpuInfo {
  /** e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** Compute capability, e.g. "9.0". */
  computeCap: string;
}

/**
 * The nvcc target of a compute capability: sm_90a for Hopper (our kernels'
 * default), sm_XY for the rest.
 *
 * @example
 * ```ts
 * import { archFor } from "./device.ts";
 * archFor("9.0"); // "sm_90a"
 * archFor("8.6"); // "sm_86"
 * ```
 */
export function archFor(computeCap: string): string {
  const m = /^(\d+)\.(\d+)$/.exec(computeCap.trim());
  if (!m) throw new RangeError(`not a compute capability: "${computeCap}"`);
  const arch = `sm_${m[1]}${m[2]}`;
  return arch === "sm_90" ? "sm_90a" : arch;
}

/**
 * Asks nvidia-smi for the first GPU; returns why none is usable as a string
 * ("driver: …" or "device: …") instead.
 *
 * @example
 * ```ts
 * import { queryGpu } from "./device.ts";
 * const gpu = await queryGpu();
 * console.log(typeof gpu === "string" ? `no usable GPU (${gpu})` : gpu.name);
 * ```
 */
export async function queryGpu(): Promise<GpuInfo | string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("nvidia-smi", {
      args: ["--query-gpu=name,compute_cap", "--format=csv,noheader"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "driver: nvidia-smi is not installed (no NVIDIA driver)";
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const why = (new TextDecoder().decode(out.stderr) + text).trim().split("\n")[0];
    return `driver: nvidia-smi failed: ${why}`;
  }
  const first = text.split("\n")[0]?.split(",").map((s) => s.trim());
  if (!first || first.length < 2 || first[0] === "") return "device: nvidia-smi lists no GPU";
  return { name: first[0], computeCap: first[1] };
}

/** Where the CUDA library gpu-check uses came from. */
export interface CudaLibrary {
  /** Path of libcudakernels. */
  path: string;
  /** What it was built for, or why it was not built here. */
  built: string;
}

/**
 * Returns a libcudakernels for `arch`: $LORAC_CUDA_LIBRARY when set; else a
 * one-arch build in build/gpu-check-<arch>/ (the full fatbin in build/ when
 * nvcc rejects the arch); else, without nvcc, the library already in build/.
 * Sets $LORAC_CUDA_LIBRARY so the backend loader opens exactly this file.
 *
 * @example
 * ```ts
 * import { cudaLibraryFor } from "./device.ts";
 * const lib = await cudaLibraryFor("sm_90a");
 * console.log(lib.path, lib.built);
 * ```
 */
export async function cudaLibraryFor(arch: string): Promise<CudaLibrary> {
  const given = Deno.env.get("LORAC_CUDA_LIBRARY");
  if (given) return { path: given, built: "given by $LORAC_CUDA_LIBRARY" };
  let lib: CudaLibrary;
  if (!(await hasNvcc())) {
    lib = { path: libraryPath("cuda"), built: "prebuilt (no nvcc here)" };
    await Deno.stat(lib.path).catch(() => {
      throw new Error(`no nvcc to build libcudakernels and no ${lib.path}: install the CUDA toolkit`);
    });
  } else {
    const home = buildDir();
    Deno.env.set("LORAC_BUILD_DIR", `${home}/gpu-check-${arch}`);
    try {
      lib = { path: await buildCuda({ archs: [arch] }), built: `nvcc for ${arch}` };
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      console.error(`gpu-check: nvcc cannot build for ${arch}; building the full fatbin (its PTX runs on newer GPUs)`);
      Deno.env.set("LORAC_BUILD_DIR", home);
      lib = { path: await buildCuda(), built: "nvcc, full fatbin" };
    } finally {
      Deno.env.set("LORAC_BUILD_DIR", home);
    }
  }
  Deno.env.set("LORAC_CUDA_LIBRARY", lib.path);
  return lib;
}
