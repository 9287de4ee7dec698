/**
 * TensorBoard event files, written without TensorFlow: `--report_to
 * tensorboard` as the seed (transformers' TensorBoardCallback) does.
 *
 * A file `events.out.tfevents.<unix seconds>.<host>` holds TFRecords:
 * uint64 length (little-endian), masked CRC32C of those 8 bytes, the data,
 * masked CRC32C of the data. Each record's data is an `Event` protobuf:
 * wall_time (double, field 1), step (int64, field 2), file_version (string,
 * field 3; "brain.Event:2" in the first record) or summary (field 5): a
 * `Summary` of repeated `Value` (field 1) { tag (string, field 1),
 * simple_value (float, field 2) }. The encoder below writes just those
 * fields. Tags follow transformers' ("train/loss", "eval/accuracy", ...).
 *
 * @module
 */

/** CRC32C (Castagnoli, reflected polynomial 0x82F63B78) lookup table. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC32C of `bytes`.
 *
 * @example
 * ```ts
 * import { crc32c } from "./tensorboard.ts";
 * crc32c(new TextEncoder().encode("123456789")).toString(16); // "e3069283"
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * TFRecord's masked CRC: rotate right by 15, add 0xa282ead8 (so a CRC of
 * data that holds CRCs stays well distributed).
 *
 * @example
 * ```ts
 * import { maskedCrc32c } from "./tensorboard.ts";
 * maskedCrc32c(new Uint8Array(0)).toString(16); // "a282ead8"
 * ```
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** A growing byte buffer with the protobuf wire encodings the Event needs. */
class ProtoWriter {
  #bytes: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.#bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#bytes.push(Number(v));
    return this;
  }

  /** Field key: number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  key(field: number, wireType: 0 | 1 | 2 | 5): this {
    return this.varint((field << 3) | wireType);
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.key(field, 1).#bytes.push(...b);
    return this;
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.key(field, 5).#bytes.push(...b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2).varint(value.length).#bytes.push(...value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

/** One TensorBoard event: a file-version header or scalars at a step. */
export type TensorBoardEvent =
  | { readonly wallTime: number; readonly fileVersion: string }
  | { readonly wallTime: number; readonly step: number; readonly scalars: Readonly<Record<string, number>> };

/**
 * The Event protobuf bytes of one event (fields in number order, step
 * omitted when 0 as proto3 does).
 *
 * @example
 * ```ts
 * import { encodeEvent } from "./tensorboard.ts";
 * encodeEvent({ wallTime: 0, fileVersion: "brain.Event:2" }).length; // 24
 * ```
 */
export function encodeEvent(event: TensorBoardEvent): Uint8Array {
  const w = new ProtoWriter().double(1, event.wallTime);
  if ("fileVersion" in event) return w.string(3, event.fileVersion).finish();
  if (event.step !== 0) w.key(2, 0).varint(event.step);
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(event.scalars)) {
    summary.bytes(1, new ProtoWriter().string(1, tag).float(2, value).finish());
  }
  return w.bytes(5, summary.finish()).finish();
}

/**
 * One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
 *
 * @example
 * ```ts
 * import { tfRecord } from "./tensorboard.ts";
 * tfRecord(new Uint8Array([1, 2, 3])).length; // 19
 * ```
 */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost"; // no --allow-sys: any name will do, TensorBoard only shows it
  }
}

/**
 * An open event file; scalars are appended (and reach the disk) as they come.
 *
 * @example
 * ```ts
 * import { TensorBoardWriter } from "./tensorboard.ts";
 * const dir = await Deno.makeTempDir();
 * using tb = TensorBoardWriter.create(dir);
 * tb.scalars(1, { "train/loss": 2.5, "train/learning_rate": 2e-4 });
 * tb.path.startsWith(`${dir}/events.out.tfevents.`); // true
 * ```
 */
export class TensorBoardWriter implements Disposable {
  /** The event file. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #now: () => number;

  private constructor(path: string, file: Deno.FsFile, now: () => number) {
    this.path = path;
    this.#file = file;
    this.#now = now;
  }

  /**
   * Creates `logDir` if needed and a new event file in it, starting with
   * the file-version record. `now` gives the wall time in seconds.
   */
  static create(logDir: string, now: () => number = () => Date.now() / 1000): TensorBoardWriter {
    Deno.mkdirSync(logDir, { recursive: true });
    const start = now();
    const path = `${logDir}/events.out.tfevents.${Math.floor(start)}.${hostname()}`;
    const writer = new TensorBoardWriter(path, Deno.openSync(path, { create: true, append: true }), now);
    writer.#write({ wallTime: start, fileVersion: "brain.Event:2" });
    return writer;
  }

  /** Appends scalars (tag -> value) at `step`; non-finite values are skipped. */
  scalars(step: number, values: Readonly<Record<string, number>>): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    if (Object.keys(finite).length > 0) this.#write({ wallTime: this.#now(), step, scalars: finite });
  }

  #write(event: TensorBoardEvent): void {
    const record = tfRecord(encodeEvent(event));
    let done = 0;
    while (done < record.length) done += this.#file.writeSync(record.subarray(done));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
