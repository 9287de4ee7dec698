/**
 * Reads the CSV files users give lorac (train.csv, validation.csv, test.csv),
 * as pandas' `read_csv` accepts them: RFC 4180 quoting with fields that hold
 * commas, quotes and newlines, an optional UTF-8 byte-order mark, LF or CRLF
 * line ends, blank lines ignored, and rows shorter than the header (the
 * missing fields are absent). Anything else is one clear {@link DataError}
 * naming the file and the line: bytes that are not UTF-8, an empty file, a
 * header with a repeated name, a row longer than the header, a quote left
 * open, a quote inside an unquoted field or text after a closing quote
 * (pandas guesses at those two; a guess can silently merge rows, so we ask).
 *
 * Parsing is npm csv-parse's sync API; this file adds the checks and turns
 * its errors into one line that says what to fix.
 *
 * @module
 */

import { type InfoRecord, parse } from "csv-parse/sync";
import { Buffer } from "node:buffer";
import { DataError } from "./errors.ts";
import { describe, oneLine } from "../util/describe.ts";

/** One data record of a CSV file. */
export interface CsvRow {
  /** The 1-based line of the file where the record starts (the header is line 1 when nothing precedes it). */
  line: number;
  /** The fields in header order; shorter than the header when the record is. */
  values: string[];
}

/** A parsed CSV file: its header and its records. */
export interface CsvTable {
  /** The file name used in error messages. */
  file: string;
  /** The header's column names, in order, each once. */
  columns: string[];
  /** The data records, in file order. */
  rows: CsvRow[];
}

/**
 * The offset of the first byte that does not belong to well-formed UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF are ill-formed),
 * or -1 when all of `bytes` is UTF-8.
 *
 * @example
 * ```ts
 * import { firstInvalidUtf8 } from "./csv.ts";
 * firstInvalidUtf8(new Uint8Array([0x61, 0xc3, 0xa9, 0xff])); // 3
 * ```
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    // Length and the allowed range of the second byte, per the Unicode table of well-formed sequences.
    let n: number, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n > bytes.length) return i;
    if (bytes[i + 1] < lo || bytes[i + 1] > hi) return i;
    for (let k = 2; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += n;
  }
  return -1;
}

/**
 * Decodes a file's bytes as UTF-8, dropping a leading byte-order mark. Bytes
 * that are not UTF-8 (a Latin-1 or Windows-1252 export) throw a
 * {@link DataError} naming the byte offset and its line.
 *
 * @example
 * ```ts
 * import { decodeUtf8 } from "./csv.ts";
 * decodeUtf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), "a.csv"); // "a"
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) line++;
    const hex = bytes[at].toString(16).padStart(2, "0");
    throw new DataError(
      `byte ${at} (0x${hex}) is not UTF-8; re-save the file as UTF-8 (e.g. \`iconv -f latin1 -t utf-8\`)`,
      { file, line },
    );
  }
}

/**
 * Maps a byte offset to its 1-based line by binary search over the line
 * breaks: LF, CRLF, or a lone CR (old Mac files; a record ends at each of them).
 */
function lineFinder(bytes: Uint8Array): (offset: number) => number {
  const breaks: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) breaks.push(i);
  }
  return (offset) => {
    let lo = 0, hi = breaks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (breaks[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/** What csv-parse attaches to its errors (its CsvError class is not exported by the sync entry). */
interface CsvParseError {
  code?: string;
  message: string;
  record?: unknown[];
}

/** Turns a csv-parse error into a sentence that says what to fix. */
function explainParseError(err: CsvParseError, columns: number): string {
  switch (err.code) {
    case "CSV_QUOTE_NOT_CLOSED":
      return 'a quoted field opened in this record is never closed; close it with " and double any quote inside it ("")';
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return 'a closing quote is followed by more text; a quote inside a quoted field must be doubled ("")';
    case "INVALID_OPENING_QUOTE":
      return 'a quote inside an unquoted field; quote the whole field and double the quotes inside it ("")';
    case "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH":
      return `${err.record?.length ?? "more"} fields but the header has ${columns}; quote fields that contain commas`;
    default:
      return `cannot parse the CSV: ${oneLine(err.message)}`;
  }
}

/**
 * Parses CSV text (already decoded) into its header and rows; `file` names it
 * in errors.
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * const t = parseCsv('title,label_name\r\n"A, b",cs.CL\r\n', "train.csv");
 * t.columns; // ["title", "label_name"]
 * t.rows[0]; // { line: 2, values: ["A, b", "cs.CL"] }
 * ```
 */
export function parseCsv(text: string, file: string): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") {
    throw new DataError("the file is empty; a CSV needs a header line (e.g. title,abstract,label_name) and rows", {
      file,
    });
  }
  // csv-parse reports where records end in bytes of UTF-8, so lines are counted over the same bytes.
  const bytes = Buffer.from(text, "utf8");
  const lineAt = lineFinder(bytes);
  // Where each record ends (after its line break); a record starts at the first byte after the previous
  // end that is not a line break (blank lines are skipped), and a parse error belongs to the record after the last.
  const ends: number[] = [];
  let headerLength = 0;
  const startAfter = (end: number) => {
    while (end < bytes.length && (bytes[end] === 0x0a || bytes[end] === 0x0d)) end++;
    return end;
  };
  let records: string[][];
  try {
    records = parse(bytes, {
      // Every line end pandas accepts, in any mix: a lone CR must not become part of a field.
      record_delimiter: ["\r\n", "\n", "\r"],
      skip_empty_lines: true,
      relax_column_count_less: true,
      on_record: (record: string[], context: InfoRecord) => {
        if (ends.length === 0) headerLength = record.length;
        ends.push(context.bytes);
        return record;
      },
    });
  } catch (e) {
    const start = startAfter(ends.at(-1) ?? 0);
    throw new DataError(explainParseError(e as CsvParseError, headerLength), { file, line: lineAt(start) }, {
      cause: e,
    });
  }
  if (records.length === 0) {
    throw new DataError("the file holds no records; a CSV needs a header line and rows", { file });
  }
  const columns = records[0];
  const seen = new Map<string, number>();
  columns.forEach((name, i) => {
    const first = seen.get(name);
    if (first !== undefined) {
      throw new DataError(
        `column ${describe(name)} appears twice in the header (columns ${first + 1} and ${i + 1}); rename one`,
        { file, line: lineAt(startAfter(0)) },
      );
    }
    seen.set(name, i);
  });
  const rows: CsvRow[] = [];
  for (let r = 1; r < records.length; r++) rows.push({ line: lineAt(startAfter(ends[r - 1])), values: records[r] });
  if (rows.length === 0) throw new DataError("the file has a header but no rows", { file });
  return { file, columns, rows };
}

/**
 * Reads and parses a CSV file (UTF-8, optional BOM). Errors name `path`.
 *
 * @example
 * ```ts
 * import { readCsv } from "./csv.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/t.csv`, "text,label\nhello,ham\n");
 * (await readCsv(`${dir}/t.csv`)).rows.length; // 1
 * ```
 */
export async function readCsv(path: string): Promise<CsvTable> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file; check --base_path and the file name"
      : (e as Error).message;
    throw new DataError(why, { file: path }, { cause: e });
  }
  return parseCsv(decodeUtf8(bytes, path), path);
}

/**
 * The index of column `name` in `table`, or a {@link DataError} that names
 * the file, the option that asked for it and the columns the file has.
 *
 * @example
 * ```ts
 * import { columnIndex, parseCsv } from "./csv.ts";
 * const t = parseCsv("title,label_name\nA,cs.CL\n", "train.csv");
 * columnIndex(t, "label_name", "--label_column"); // 1
 * ```
 */
export function columnIndex(table: CsvTable, name: string, option: string): number {
  const i = table.columns.indexOf(name);
  if (i < 0) {
    const shown = table.columns.slice(0, 12).map((c) => describe(c, 40)).join(", ");
    const have = table.columns.length > 12 ? `${shown} and ${table.columns.length - 12} more` : shown;
    throw new DataError(`no column ${describe(name)} (${option}); the header has ${have}`, { file: table.file });
  }
  return i;
}
