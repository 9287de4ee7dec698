/**
 * Positioned reads for the lazy checkpoint readers (safetensors, GGUF): one
 * interface over a file on disk and over bytes already in memory, so the same
 * parsing code serves both (a model downloaded into memory, tests, fuzzing).
 *
 * @module
 */

/** Bytes that can be read at any offset. */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** Reads up to `into.length` bytes at `offset`; returns how many it got (fewer only at the end). */
  readAt(offset: number, into: Uint8Array): Promise<number>;
  /** Releases the file, if any; later reads throw. */
  close(): void;
}

/**
 * Reads up to `into.length` bytes at `offset`; returns how many it got (fewer
 * only at the end of the file).
 *
 * @example
 * ```ts
 * import { readAt } from "./read_at.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3, 4]));
 * using file = await Deno.open(path);
 * const out = new Uint8Array(2);
 * await readAt(file, 2, out); // 2, out = [3, 4]
 * ```
 */
export async function readAt(file: Deno.FsFile, offset: number, into: Uint8Array): Promise<number> {
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < into.length) {
    const n = await file.read(into.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got;
}

/**
 * Opens `path` for positioned reads. Reads run one at a time (seek and read
 * are two steps). Throws Deno's error when the file cannot be opened.
 *
 * @example
 * ```ts
 * import { openFileSource } from "./read_at.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
 * const source = await openFileSource(path);
 * source.size; // 3
 * source.close();
 * ```
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  const file = await Deno.open(path, { read: true });
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    file.close();
    throw e;
  }
  let open = true;
  let queue: Promise<unknown> = Promise.resolve();
  return {
    size,
    readAt(offset, into) {
      const run = queue.then(() => {
        if (!open) throw new Error(`${path}: read after close`);
        return readAt(file, offset, into);
      });
      queue = run.catch(() => {});
      return run;
    },
    close() {
      if (open) file.close();
      open = false;
    },
  };
}

/**
 * `bytes` as a source (not copied: later changes to `bytes` show).
 *
 * @example
 * ```ts
 * import { bytesSource } from "./read_at.ts";
 * const out = new Uint8Array(2);
 * await bytesSource(new Uint8Array([1, 2, 3])).readAt(2, out); // 1, out = [3, 0]
 * ```
 */
export function bytesSource(bytes: Uint8Array): ByteSource {
  let open = true;
  return {
    size: bytes.length,
    readAt(offset, into) {
      if (!open) return Promise.reject(new Error("read after close"));
      const part = bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + into.length, bytes.length));
      into.set(part);
      return Promise.resolve(part.length);
    },
    close() {
      open = false;
    },
  };
}
