/**
 * Downloads one blob into the cache: bytes go to `blobs/<etag>.incomplete`,
 * which a later run resumes with an HTTP Range request; a dropped connection
 * is retried from where it stopped; the size and (for LFS files) the sha256
 * are checked before the file is renamed to its final name, so a finished
 * blob is always whole.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { dirname } from "node:path";
import { formatBytes, Progress, type ProgressSink } from "../ui/progress.ts";
import { cacheIo } from "./cache.ts";
import { HubError } from "./errors.ts";
import { type FileMetadata, type FileRequest, httpError, hubHeaders, request } from "./http.ts";

/** Options of {@linkcode downloadBlob}. */
export interface BlobDownload {
  /** The file being fetched (URLs, token, messages). */
  req: FileRequest;
  /** Its metadata from the HEAD call. */
  meta: FileMetadata;
  /** Final path of the blob; `.incomplete` is appended while downloading. */
  blobPath: string;
  /** The hub cache folder, named in disk-error messages. */
  cacheDir: string;
  /** Give up on a connection after this many ms without a byte. */
  timeoutMs: number;
  /** Where to draw a progress bar; none when undefined. */
  progress: ProgressSink | undefined;
}

/** Attempts per download; each resumes where the previous one stopped. */
const MAX_ATTEMPTS = 5;
const MAX_REDIRECTS = 5;
const READ_CHUNK = 1 << 20;

interface PartialBlob {
  file: Deno.FsFile;
  path: string;
  have: number;
  hash: Hash | undefined;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const n = await file.write(bytes.subarray(off));
    if (n <= 0) throw new Error("the file accepted no bytes");
    off += n;
  }
}

// A resumed download must hash the bytes already on disk before appending.
async function hashPrefix(file: Deno.FsFile, length: number, hash: Hash): Promise<void> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(READ_CHUNK);
  let left = length;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(left, buf.length)));
    if (n === null || n === 0) throw new Error(`the partial file is shorter than ${length} bytes`);
    hash.update(buf.subarray(0, n));
    left -= n;
  }
}

async function restart(part: PartialBlob, o: BlobDownload): Promise<void> {
  await cacheIo(`truncate ${part.path}`, o.cacheDir, async () => {
    await part.file.truncate(0);
    await part.file.seek(0, Deno.SeekMode.Start);
  });
  part.have = 0;
  part.hash = o.meta.sha256 ? createHash("sha256") : undefined;
}

// GET the location, following redirects ourselves so the token never leaves the Hub's origin.
async function get(o: BlobDownload, have: number, signal: AbortSignal): Promise<Response> {
  let url = o.meta.location;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers = hubHeaders(url, o.req, have > 0 ? { Range: `bytes=${have}-` } : {});
    const res = await request(url, { headers, signal }, o.timeoutMs);
    const location = res.headers.get("Location");
    if (res.status < 300 || res.status >= 400 || location === null) return res;
    await res.body?.cancel();
    url = new URL(location, url).href;
  }
  throw new HubError("protocol", `more than ${MAX_REDIRECTS} redirects downloading ${o.req.filename}`);
}

/** One GET of the missing tail, appended to the partial file. */
async function fetchRest(part: PartialBlob, o: BlobDownload, bar: Progress | undefined): Promise<void> {
  const size = o.meta.size;
  const stall = new AbortController();
  const res = await get(o, part.have, stall.signal);
  if (res.status === 416 && part.have === size) {
    await res.body?.cancel();
    return; // the partial file already holds everything
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw httpError(res, o.req);
  }
  if (part.have > 0 && res.status === 200) {
    // The server ignored the Range header and sends everything again.
    await restart(part, o);
    bar?.reset(0);
  } else if (res.status === 206) {
    const range = res.headers.get("Content-Range") ?? "";
    if (!range.startsWith(`bytes ${part.have}-`)) {
      await res.body?.cancel();
      throw new HubError(
        "protocol",
        `asked for bytes ${part.have}- of ${o.req.filename}, got Content-Range "${range}"`,
      );
    }
  }
  if (res.body === null) return;
  const reader = res.body.getReader();
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      stall.abort();
    }, o.timeoutMs);
  };
  try {
    arm();
    // Ends at the end of the body; the stall timer ends a connection that stops sending.
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        const why = stalled ? `no byte for ${o.timeoutMs / 1000} s` : "connection dropped";
        throw new HubError(
          "network",
          `${why} after ${formatBytes(part.have)} of ${o.req.filename} from ${new URL(o.meta.location).origin}`,
          { cause: e },
        );
      }
      if (chunk.done) return;
      arm();
      await cacheIo(`write ${part.path}`, o.cacheDir, () => writeAll(part.file, chunk.value));
      part.hash?.update(chunk.value);
      part.have += chunk.value.length;
      bar?.add(chunk.value.length);
      if (size !== undefined && part.have > size) {
        throw new HubError(
          "integrity",
          `the server sent more than the ${size} bytes it announced for ${o.req.filename}`,
        );
      }
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function openPartial(o: BlobDownload): Promise<PartialBlob> {
  const path = `${o.blobPath}.incomplete`;
  const file = await cacheIo(`open ${path}`, o.cacheDir, async () => {
    await Deno.mkdir(dirname(path), { recursive: true });
    return await Deno.open(path, { read: true, write: true, create: true });
  });
  const part: PartialBlob = { file, path, have: 0, hash: undefined };
  try {
    await cacheIo(`read ${path}`, o.cacheDir, async () => {
      part.have = (await file.stat()).size;
      if (o.meta.size !== undefined && part.have > o.meta.size) {
        await restart(part, o); // longer than the blob: not a prefix of it
        return;
      }
      part.hash = o.meta.sha256 ? createHash("sha256") : undefined;
      if (part.hash && part.have > 0) await hashPrefix(file, part.have, part.hash);
      await file.seek(part.have, Deno.SeekMode.Start);
    });
    return part;
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Downloads `o.meta.location` into `o.blobPath`, resuming `<blobPath>.incomplete` if present.
 * Nothing appears at `o.blobPath` unless the bytes are complete and match the announced size and sha256.
 *
 * @example
 * ```ts
 * import { downloadBlob } from "./blob.ts";
 * import { fetchMetadata } from "./http.ts";
 * const req = { endpoint: "https://huggingface.co", repoId: "HuggingFaceTB/SmolLM2-135M", revision: "main", filename: "config.json", token: undefined };
 * const meta = await fetchMetadata(req, 10_000);
 * if (!("missing" in meta)) {
 *   await downloadBlob({ req, meta, blobPath: `/tmp/blobs/${meta.etag}`, cacheDir: "/tmp", timeoutMs: 10_000, progress: Deno.stderr });
 * }
 * ```
 */
export async function downloadBlob(o: BlobDownload): Promise<void> {
  const part = await openPartial(o);
  const size = o.meta.size;
  try {
    const bar = o.progress
      ? new Progress(o.req.filename, { total: size, initial: part.have, sink: o.progress })
      : undefined;
    try {
      for (let attempt = 1; size === undefined || part.have < size; attempt++) {
        try {
          await fetchRest(part, o, bar);
          if (size === undefined || part.have === size) break;
          throw new HubError(
            "network",
            `the connection closed after ${part.have} of ${size} bytes of ${o.req.filename}`,
          );
        } catch (e) {
          if (!(e instanceof HubError && e.code === "network") || attempt >= MAX_ATTEMPTS) throw e;
          await new Promise((ok) => setTimeout(ok, 100 * attempt));
        }
      }
    } finally {
      bar?.finish();
    }
    const digest = part.hash?.digest("hex");
    if (digest !== undefined && digest !== o.meta.sha256) {
      await restart(part, o); // a wrong prefix must not be resumed
      throw new HubError(
        "integrity",
        `${o.req.filename} of ${o.req.repoId} has sha256 ${digest}, the Hub announced ${o.meta.sha256}: run again to download it anew`,
      );
    }
    await cacheIo(`sync ${part.path}`, o.cacheDir, () => part.file.sync());
  } finally {
    part.file.close();
  }
  await cacheIo(`rename ${part.path}`, o.cacheDir, () => Deno.rename(part.path, o.blobPath));
}
