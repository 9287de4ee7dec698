import assert from "node:assert/strict";
import { columnIndex, decodeUtf8, firstInvalidUtf8, parseCsv, readCsv } from "../lib/data/csv.ts";
import { DataError } from "../lib/data/errors.ts";
import { Rng } from "./reference/random.ts";

Deno.test("csv: quoting, embedded newlines, BOM, CRLF, blank lines and short rows parse as pandas reads them", () => {
  const cases: { name: string; text: string; columns: string[]; rows: { line: number; values: string[] }[] }[] = [
    {
      name: "quoted commas, doubled quotes, newline inside a field",
      text: 'title,abstract,label_name\n"A, B","He said ""hi""\nnext line",cs.CL\nC,D,cs.CV\n',
      columns: ["title", "abstract", "label_name"],
      rows: [{ line: 2, values: ["A, B", 'He said "hi"\nnext line', "cs.CL"] }, {
        line: 4,
        values: ["C", "D", "cs.CV"],
      }],
    },
    {
      name: "BOM and CRLF, a CRLF inside a quoted field kept as is",
      text: '\ufefftext,label\r\n"x\r\ny",ham\r\nz,spam\r\n',
      columns: ["text", "label"],
      rows: [{ line: 2, values: ["x\r\ny", "ham"] }, { line: 4, values: ["z", "spam"] }],
    },
    {
      name: "blank lines are skipped and lines still count; no final newline",
      text: "a,b\n\n1,2\n\n\n3,4",
      columns: ["a", "b"],
      rows: [{ line: 3, values: ["1", "2"] }, { line: 6, values: ["3", "4"] }],
    },
    {
      name: "a row shorter than the header lacks the missing fields",
      text: "a,b,c\n1\n2,,3\n",
      columns: ["a", "b", "c"],
      rows: [{ line: 2, values: ["1"] }, { line: 3, values: ["2", "", "3"] }],
    },
  ];
  for (const c of cases) {
    const t = parseCsv(c.text, "f.csv");
    assert.deepEqual(t.columns, c.columns, c.name);
    assert.deepEqual(t.rows, c.rows, c.name);
  }
});

Deno.test("csv: each bad file is one line that names the file, the line and what to do", () => {
  const cases: { name: string; bytes: Uint8Array | string; message: string }[] = [
    {
      name: "empty",
      bytes: "",
      message: "f.csv: the file is empty; a CSV needs a header line (e.g. title,abstract,label_name) and rows",
    },
    {
      name: "only a BOM and whitespace",
      bytes: "\ufeff \n\n",
      message: "f.csv: the file is empty; a CSV needs a header line (e.g. title,abstract,label_name) and rows",
    },
    { name: "header only", bytes: "title,label_name\n", message: "f.csv: the file has a header but no rows" },
    {
      name: "duplicate header",
      bytes: "title,label,title\n1,2,3\n",
      message: 'f.csv: line 1: column "title" appears twice in the header (columns 1 and 3); rename one',
    },
    {
      name: "quote never closed (the record that opened it, not the end of the file)",
      bytes: 'a,b\n1,2\n3,"open\n4,5\n6,7\n',
      message:
        'f.csv: line 3: a quoted field opened in this record is never closed; close it with " and double any quote inside it ("")',
    },
    {
      name: "text after a closing quote",
      bytes: 'a,b\n1,"x"y\n',
      message:
        'f.csv: line 2: a closing quote is followed by more text; a quote inside a quoted field must be doubled ("")',
    },
    {
      name: "a quote inside an unquoted field",
      bytes: 'a,b\n1,x"y"\n',
      message:
        'f.csv: line 2: a quote inside an unquoted field; quote the whole field and double the quotes inside it ("")',
    },
    {
      name: "more fields than the header",
      bytes: "a,b\n1,2\n\n3,4,5\n",
      message: "f.csv: line 4: 3 fields but the header has 2; quote fields that contain commas",
    },
    {
      name: "Latin-1 bytes",
      bytes: new Uint8Array([...new TextEncoder().encode("a,b\n1,2\ncaf"), 0xe9, ...new TextEncoder().encode(",3\n")]),
      message:
        "f.csv: line 3: byte 11 (0xe9) is not UTF-8; re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
    },
  ];
  for (const c of cases) {
    const bytes = typeof c.bytes === "string" ? new TextEncoder().encode(c.bytes) : c.bytes;
    assert.throws(() => parseCsv(decodeUtf8(bytes, "f.csv"), "f.csv"), (e) => {
      assert.ok(e instanceof DataError, c.name);
      assert.equal(e.message, c.message, c.name);
      assert.ok(!e.message.includes("\n"), `${c.name}: one line`);
      return true;
    });
  }
});

Deno.test("csv: readCsv names a missing file; columnIndex names the option and the columns the file has", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(readCsv(`${dir}/nope.csv`), {
    message: `${dir}/nope.csv: no such file; check --base_path and the file name`,
  });
  await Deno.writeTextFile(`${dir}/t.csv`, "title,label\nA,x\n");
  const t = await readCsv(`${dir}/t.csv`);
  assert.equal(columnIndex(t, "label", "--label_column"), 1);
  assert.throws(() => columnIndex(t, "abstract", "--text_fields"), {
    message: `${dir}/t.csv: no column "abstract" (--text_fields); the header has "title", "label"`,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("csv: firstInvalidUtf8 agrees with a fatal TextDecoder on random bytes", () => {
  const rng = new Rng();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  // Bytes drawn to hit lead bytes, continuation bytes, overlongs, surrogates and truncated sequences.
  const pool = [0x41, 0x0a, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xa0, 0xed, 0x9f, 0xef, 0xf0, 0x90, 0xf4, 0x8f, 0xf5];
  for (let trial = 0; trial < 3000; trial++) {
    const bytes = Uint8Array.from({ length: rng.int(0, 9) }, () => pool[rng.int(0, pool.length - 1)]);
    const at = firstInvalidUtf8(bytes);
    let valid = true;
    try {
      decoder.decode(bytes);
    } catch {
      valid = false;
    }
    assert.equal(at === -1, valid, `[${bytes}] (seed ${rng.seed})`);
    if (at >= 0) decoder.decode(bytes.subarray(0, at)); // the prefix before the reported byte is valid
  }
});
