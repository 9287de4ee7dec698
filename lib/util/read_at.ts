/**
 * Positioned reads of an open file, shared by the lazy checkpoint readers.
 *
 * @module
 */

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
