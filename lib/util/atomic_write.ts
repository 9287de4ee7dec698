/**
 * Atomic file writes: the bytes go to a temporary name beside the target,
 * are flushed, and the temporary file is then renamed over the target. A
 * reader (or a crash) never sees half a file, and a failed write leaves the
 * old file, if any, untouched.
 *
 * @module
 */

function tempPathFor(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  // A leading dot and the "tmp" infix keep half-written files out of listings and of git (.gitignore has *.tmp*).
  return `${dir}.${base}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Writes `data` (bytes, or a string written as UTF-8) to `path` atomically.
 * The folder must exist.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/results.txt`, "Accuracy:   0.938\n");
 * await Deno.readTextFile(`${dir}/results.txt`); // "Accuracy:   0.938\n"
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = tempPathFor(path);
  try {
    using file = await Deno.open(temp, { write: true, createNew: true });
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    await file.sync();
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}
