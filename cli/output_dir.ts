/**
 * What a failed command leaves in its output folder: nothing new. The
 * folder's contents are noted before the run; when the run throws, every
 * file and folder that was not there before is removed (the folder too, if
 * the run created it), so a disk that filled up or a bad input found late
 * never leaves half a run behind. Files that were there before are left
 * alone. One exception: a new `checkpoint-<step>` folder is a state a
 * training run can resume from, so when one was saved everything is kept
 * and the message says how to resume.
 *
 * @module
 */

/**
 * Checks an output folder flag's value before any work: missing (it will be
 * created) or a folder; else one line naming the flag and the path.
 *
 * @example
 * ```ts
 * import { checkOutputFolder } from "./output_dir.ts";
 * await checkOutputFolder(await Deno.makeTempDir(), "--output_dir"); // a folder: fine
 * await checkOutputFolder(await Deno.makeTempFile(), "--output_dir").catch((e) => e.message);
 * // "--output_dir /tmp/... is a file; choose a folder (it is created when missing) or move the file away"
 * ```
 */
export async function checkOutputFolder(path: string, flag: string): Promise<void> {
  const info = await Deno.stat(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${flag} ${path}: ${(e as Error).message}; choose a folder you can write to`, { cause: e });
  });
  if (info !== null && !info.isDirectory) {
    throw new Error(`${flag} ${path} is a file; choose a folder (it is created when missing) or move the file away`);
  }
}

/** Every path under `dir`, relative to it (folders end with "/"); null when `dir` does not exist. */
async function contents(dir: string): Promise<Set<string> | null> {
  const found = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      found.add(`${rel}${e.name}${e.isDirectory ? "/" : ""}`);
      if (e.isDirectory) await walk(`${rel}${e.name}/`);
    }
  };
  try {
    await walk("");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return found;
}

/** Removes what `dir` holds now and did not hold `before`. */
async function removeNew(dir: string, before: Set<string>): Promise<void> {
  const walk = async (rel: string): Promise<void> => {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      const path = `${rel}${e.name}${e.isDirectory ? "/" : ""}`;
      if (!before.has(path)) await Deno.remove(`${dir}/${path}`, { recursive: true });
      else if (e.isDirectory) await walk(path);
    }
  };
  await walk("");
}

/** The last of the `checkpoint-<step>` folders in `now` that were not there `before`, or undefined. */
function newCheckpoint(now: Set<string>, before: Set<string> | null): string | undefined {
  const steps = [...now].filter((p) => !before?.has(p)).map((p) => /^checkpoint-(\d+)\/$/.exec(p)?.[1])
    .filter((s) => s !== undefined).map(Number);
  return steps.length > 0 ? `checkpoint-${Math.max(...steps)}` : undefined;
}

/**
 * Runs `run`, and if it throws, removes what it added to `dir` before
 * rethrowing (see the module notes). With `resumeHint`, a new
 * checkpoint-<step> folder keeps everything, and the message gains the hint
 * for the newest one.
 *
 * @example
 * ```ts
 * import { undoneOnFailure } from "./output_dir.ts";
 * const dir = `${await Deno.makeTempDir()}/run`;
 * const message = await undoneOnFailure(dir, async () => {
 *   await Deno.mkdir(dir);
 *   await Deno.writeTextFile(`${dir}/half.json`, "{");
 *   throw new Error("disk full");
 * }).catch((e) => e.message); // "disk full"
 * await Deno.stat(dir).catch(() => "gone"); // "gone"
 * ```
 */
export async function undoneOnFailure<T>(
  dir: string,
  run: () => Promise<T>,
  resumeHint?: (checkpoint: string) => string,
): Promise<T> {
  const before = await contents(dir);
  try {
    return await run();
  } catch (e) {
    const now = await contents(dir).catch(() => null);
    if (now === null) throw e;
    const checkpoint = resumeHint && newCheckpoint(now, before);
    if (checkpoint && resumeHint) {
      throw new Error(`${(e as Error).message}; ${resumeHint(`${dir}/${checkpoint}`)}`, { cause: e });
    }
    if (before === null) await Deno.remove(dir, { recursive: true });
    else await removeNew(dir, before);
    throw e;
  }
}
