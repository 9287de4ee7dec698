/**
 * Builds the native kernel library: `libcpukernels` with g++ and, where nvcc
 * is on the machine, `libcudakernels` with nvcc. A library is rebuilt only
 * when a hash of its sources, flags and compiler changes.
 *
 * CPU files named `*_avx2.cpp` / `*_avx512.cpp` / `*_amx.cpp` are compiled with that ISA's
 * flags; the rest with baseline x86-64 flags, so one binary runs on any
 * x86-64 and picks its kernels at run time.
 *
 * Run `deno task build` (or `deno run -A cuda/build.ts [cpu|cuda] [--arch sm_90a]`).
 *
 * @module
 */

const cudaDir = new URL(".", import.meta.url);
const cpuDir = new URL("cpu/", cudaDir);
const gpuDir = new URL("gpu/", cudaDir);
const header = new URL("lorac.h", cudaDir);

/** Where built libraries go: `build/` at the repository root, or $LORAC_BUILD_DIR. */
export function buildDir(): string {
  return Deno.env.get("LORAC_BUILD_DIR") ?? new URL("../build/", cudaDir).pathname;
}

/** The two builds of the library. */
export type LibraryKind = "cpu" | "cuda";

/** Path of a built library, whether or not it exists yet. */
export function libraryPath(kind: LibraryKind): string {
  const name = kind === "cpu" ? "libcpukernels" : "libcudakernels";
  const ext = Deno.build.os === "darwin" ? "dylib" : "so";
  return `${buildDir()}/${name}.${ext}`;
}

/** Thrown when a compiler is missing or fails; carries the compiler output. */
export class BuildError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

function isaFlags(file: string): string[] {
  if (Deno.build.arch !== "x86_64") return [];
  if (file.endsWith("_avx512.cpp")) {
    return ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mfma", "-mf16c"];
  }
  if (file.endsWith("_avx2.cpp")) return ["-mavx2", "-mfma", "-mf16c"];
  // Every CPU with AMX-BF16 has AVX-512 BF16, which the AMX file's packers use.
  if (file.endsWith("_amx.cpp")) return ["-mamx-tile", "-mamx-bf16", "-mavx512f", "-mavx512bw", "-mavx512bf16"];
  return [];
}

const cpuCommonFlags = [
  "-std=c++17",
  "-O3",
  "-fPIC",
  "-fopenmp",
  "-fvisibility=hidden",
  "-Wall",
  "-Wextra",
  "-Werror=return-type",
];

/** CUDA targets: sm_80, sm_86, sm_89, sm_90a cubins plus compute_90 PTX. */
const defaultCudaArchs = ["sm_80", "sm_86", "sm_89", "sm_90a"];

function cudaGencode(archs: string[]): string[] {
  const flags = archs.flatMap((a) => ["-gencode", `arch=${a.replace("sm_", "compute_")},code=${a}`]);
  const last = archs[archs.length - 1].replace(/a$/, "").replace("sm_", "compute_");
  return [...flags, "-gencode", `arch=${last},code=${last}`];
}

async function listSources(dir: URL, ext: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && (entry.name.endsWith(ext) || entry.name.endsWith(".h") || entry.name.endsWith(".cuh"))) {
        files.push(new URL(entry.name, dir).pathname);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return files.sort();
}

async function hashOf(files: string[], extra: string): Promise<string> {
  const parts: Uint8Array[] = [new TextEncoder().encode(extra)];
  for (const f of files) parts.push(new TextEncoder().encode(f), await Deno.readFile(f));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const digest = await crypto.subtle.digest("SHA-256", all);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function run(cmd: string, args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new BuildError(`${cmd} not found: install it to build the kernels`);
    throw e;
  }
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new BuildError(`${cmd} failed:\n${text}`);
  }
}

async function commandExists(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function upToDate(target: string, hash: string): Promise<boolean> {
  try {
    return await exists(target) && (await Deno.readTextFile(`${target}.hash`)) === hash;
  } catch {
    return false;
  }
}

/** Moves a finished library into place, so a crash mid-build never leaves half a file. */
async function install(tmp: string, target: string, hash: string): Promise<void> {
  await Deno.rename(tmp, target);
  await Deno.writeTextFile(`${target}.hash`, hash);
}

/** Runs `jobs` with at most `limit` at a time. */
async function pool(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

/** Headers every translation unit may include: a change to one recompiles all. */
async function headers(): Promise<string[]> {
  const all = [...(await listSources(cpuDir, ".h")), ...(await listSources(gpuDir, ".cuh"))];
  return [header.pathname, ...all.filter((f) => f.endsWith(".h") || f.endsWith(".cuh"))];
}

interface LinkPlan {
  target: string;
  sources: string[];
  objDir: string;
  /** The compile command for one source file to one object. */
  compile: (source: string, object: string) => [string, string[]];
  /** The link command for the objects into `out`. */
  link: (objects: string[], out: string) => [string, string[]];
  /** Compiler and flags, part of every object's hash. */
  flagsKey: string;
}

/**
 * Compiles each source whose object is missing (objects are named by a hash
 * of their source, the headers and the flags, so only what changed is
 * recompiled), then links when the set of objects changed.
 */
async function compileAndLink(plan: LinkPlan, announce: () => void): Promise<string> {
  const shared = await hashOf(await headers(), plan.flagsKey);
  const objects: string[] = [];
  const jobs: (() => Promise<void>)[] = [];
  await Deno.mkdir(plan.objDir, { recursive: true });
  for (const source of plan.sources) {
    const object = `${plan.objDir}/${source.split("/").pop()}-${(await hashOf([source], shared)).slice(0, 16)}.o`;
    objects.push(object);
    if (await exists(object)) continue;
    jobs.push(async () => {
      const tmp = `${object}.tmp${Deno.pid}`;
      await run(...plan.compile(source, tmp));
      await Deno.rename(tmp, object);
    });
  }
  const hash = await hashOf([], objects.join("\n"));
  if (jobs.length === 0 && await upToDate(plan.target, hash)) return plan.target;
  announce();
  await pool(jobs, navigator.hardwareConcurrency);
  const tmp = `${plan.target}.tmp${Deno.pid}`;
  await run(...plan.link(objects, tmp));
  await install(tmp, plan.target, hash);
  for await (const entry of Deno.readDir(plan.objDir)) {
    const path = `${plan.objDir}/${entry.name}`;
    if (!objects.includes(path)) await Deno.remove(path); // objects of older sources
  }
  return plan.target;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds libcpukernels from what changed in its sources; returns its path.
 *
 * @example
 * ```ts
 * import { buildCpu } from "./build.ts";
 * const path = await buildCpu();
 * ```
 */
export async function buildCpu(options: { quiet?: boolean } = {}): Promise<string> {
  const cxx = Deno.env.get("CXX") ?? "g++";
  const target = libraryPath("cpu");
  const files = await listSources(cpuDir, ".cpp");
  return compileAndLink({
    target,
    sources: files.filter((f) => f.endsWith(".cpp")),
    objDir: `${buildDir()}/obj-cpu`,
    flagsKey: [cxx, ...cpuCommonFlags, Deno.build.arch].join(" "),
    compile: (src, obj) => [cxx, [...cpuCommonFlags, ...isaFlags(src), "-c", src, "-o", obj]],
    // nodelete: unloading a library that ran an OpenMP region crashes Deno at exit.
    link: (objs, out) => [cxx, ["-shared", "-fopenmp", "-Wl,-z,nodelete", "-o", out, ...objs]],
  }, () => options.quiet || console.error(`building ${target} with ${cxx}`));
}

/** True when nvcc is on this machine. */
export function hasNvcc(): Promise<boolean> {
  return commandExists(Deno.env.get("NVCC") ?? "nvcc");
}

/**
 * Builds libcudakernels with nvcc from what changed in its sources; returns
 * its path. `archs` defaults to the fatbin sm_80, sm_86, sm_89, sm_90a + PTX.
 *
 * @example
 * ```ts
 * import { buildCuda, hasNvcc } from "./build.ts";
 * if (await hasNvcc()) await buildCuda({ archs: ["sm_90a"] });
 * ```
 */
export async function buildCuda(options: { archs?: string[]; quiet?: boolean } = {}): Promise<string> {
  const nvcc = Deno.env.get("NVCC") ?? "nvcc";
  const archs = options.archs ?? defaultCudaArchs;
  const target = libraryPath("cuda");
  const flags = ["-std=c++17", "-O3", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-lineinfo", ...cudaGencode(archs)];
  const files = await listSources(gpuDir, ".cu");
  return compileAndLink({
    target,
    sources: files.filter((f) => f.endsWith(".cu")),
    objDir: `${buildDir()}/obj-cuda`,
    flagsKey: [nvcc, ...flags].join(" "),
    compile: (src, obj) => [nvcc, [...flags, "--threads", "0", "-c", src, "-o", obj]],
    // The runtime is linked statically: only the driver is needed at run time.
    link: (objs, out) => [nvcc, ["--shared", "-cudart", "static", ...cudaGencode(archs), "-o", out, ...objs]],
  }, () => options.quiet || console.error(`building ${target} with ${nvcc} for ${archs.join(", ")}`));
}

if (import.meta.main) {
  const args = Deno.args;
  const only = args.find((a) => a === "cpu" || a === "cuda");
  const archAt = args.indexOf("--arch");
  const archs = archAt >= 0 ? args[archAt + 1].split(",") : undefined;
  try {
    if (only !== "cuda") console.log(await buildCpu());
    if (only !== "cpu") {
      if (await hasNvcc()) console.log(await buildCuda({ archs }));
      else console.log("nvcc not found: skipping libcudakernels (the CPU path still works)");
    }
  } catch (e) {
    console.error(e instanceof BuildError ? e.message : e);
    Deno.exit(1);
  }
}
