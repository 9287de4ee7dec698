import assert from "node:assert/strict";
import { crc32c, encodeEvent, maskedCrc32c, TensorBoardWriter, tfRecord } from "../lib/train/tensorboard.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const ascii = (s: string) => new TextEncoder().encode(s);

Deno.test("tensorboard: CRC32C check values (RFC 3720 B.4 and the usual '123456789')", () => {
  const table: [Uint8Array, number][] = [
    [ascii("123456789"), 0xe3069283],
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    [new Uint8Array(0), 0],
  ];
  for (const [bytes, want] of table) assert.equal(crc32c(bytes), want, hex(bytes));
  assert.equal(maskedCrc32c(new Uint8Array(0)), 0xa282ead8);
});

Deno.test("tensorboard: records are byte for byte what tensorboard 2.21's RecordWriter writes", () => {
  // Python: RecordWriter(buf).write(Event(...).SerializeToString()) for these two events.
  const want = "1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b3531103d0000000000000060" +
    "49f1ec0900005040fc54d94110ac022a2f0a110a0a747261696e2f6c6f7373150000003f0a1a0a13747261696e2f6c6561726e696e675f" +
    "726174651517b751393c35ceb8";
  const got = [
    tfRecord(encodeEvent({ wallTime: 1700000000.5, fileVersion: "brain.Event:2" })),
    tfRecord(
      encodeEvent({ wallTime: 1700000001.25, step: 300, scalars: { "train/loss": 0.5, "train/learning_rate": 2e-4 } }),
    ),
  ];
  assert.equal(got.map(hex).join(""), want);
});

/** A reader of what the writer writes: checks every CRC and decodes the Event fields we use. */
function readEvents(bytes: Uint8Array) {
  const events: { wallTime: number; step: number; fileVersion?: string; scalars: Record<string, number> }[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    const n = Number(view.getBigUint64(at, true));
    assert.equal(view.getUint32(at + 8, true), maskedCrc32c(bytes.subarray(at, at + 8)), `length CRC at ${at}`);
    const data = bytes.subarray(at + 12, at + 12 + n);
    assert.equal(view.getUint32(at + 12 + n, true), maskedCrc32c(data), `data CRC at ${at}`);
    events.push(decodeEvent(data));
    at += 16 + n;
  }
  return events;
}

function decodeFields(data: Uint8Array, visit: (field: number, wire: number, at: number, len: number) => void) {
  let at = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = data[at++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) return v;
    }
  };
  while (at < data.length) {
    const key = Number(varint());
    const wire = key & 7, field = key >> 3;
    if (wire === 0) visit(field, wire, at, Number(varint()));
    else if (wire === 2) {
      const len = Number(varint());
      visit(field, wire, at, len);
      at += len;
    } else {
      const len = wire === 1 ? 8 : 4;
      visit(field, wire, at, len);
      at += len;
    }
  }
}

function decodeEvent(data: Uint8Array) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = {
    wallTime: 0,
    step: 0,
    fileVersion: undefined as string | undefined,
    scalars: {} as Record<string, number>,
  };
  decodeFields(data, (field, _wire, at, len) => {
    if (field === 1) out.wallTime = view.getFloat64(at, true);
    else if (field === 2) out.step = len; // varint value
    else if (field === 3) out.fileVersion = new TextDecoder().decode(data.subarray(at, at + len));
    else if (field === 5) {
      decodeFields(data.subarray(at, at + len), (_f, _w, vAt, vLen) => {
        const value = data.subarray(at + vAt, at + vAt + vLen);
        const vView = new DataView(value.buffer, value.byteOffset, value.byteLength);
        let tag = "", simple = NaN;
        decodeFields(value, (f, _w2, a, l) => {
          if (f === 1) tag = new TextDecoder().decode(value.subarray(a, a + l));
          if (f === 2) simple = vView.getFloat32(a, true);
        });
        out.scalars[tag] = simple;
      });
    }
  });
  return out;
}

Deno.test("tensorboard: the writer's file starts with brain.Event:2 and holds each step's scalars", async () => {
  const dir = await Deno.makeTempDir();
  let clock = 1000.25;
  const now = () => (clock += 0.5);
  const steps: { step: number; scalars: Record<string, number> }[] = [
    { step: 1, scalars: { "train/loss": 6.25, "train/learning_rate": 1e-4, "train/grad_norm": 0.75 } },
    { step: 2, scalars: { "train/loss": 5.5, "train/learning_rate": 2e-4 } },
    { step: 200000, scalars: { "eval/loss": 0.125, "eval/accuracy": 0.96875 } },
  ];
  let path: string;
  {
    using tb = TensorBoardWriter.create(`${dir}/runs/x`, now);
    path = tb.path;
    for (const s of steps) tb.scalars(s.step, s.scalars);
    tb.scalars(3, { "train/loss": NaN }); // nothing finite: no record
  }
  assert.match(path, /\/runs\/x\/events\.out\.tfevents\.1000\.[^/]+$/);
  const events = readEvents(await Deno.readFile(path));
  assert.deepEqual(events[0], { wallTime: 1000.75, step: 0, fileVersion: "brain.Event:2", scalars: {} });
  assert.equal(events.length, 1 + steps.length);
  steps.forEach((s, i) => {
    assert.equal(events[i + 1].step, s.step);
    assert.equal(events[i + 1].wallTime, 1000.75 + 0.5 * (i + 1));
    for (const [tag, v] of Object.entries(s.scalars)) assert.equal(events[i + 1].scalars[tag], Math.fround(v), tag);
  });
});
