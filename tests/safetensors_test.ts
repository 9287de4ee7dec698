import assert from "node:assert/strict";
import {
  INDEX_FILE,
  SafetensorsCheckpoint,
  SafetensorsError,
  SafetensorsFile,
  toFloat32,
  writeSafetensors,
} from "../lib/formats/safetensors.ts";
import { fromBf16, toBf16 } from "../lib/backend/dtype.ts";
import { Rng } from "./reference/random.ts";

const STORIES = new URL("../../shared/models/stories260K/hf/", import.meta.url).pathname;

/** A file made of an 8-byte length, the header text and `dataBytes` zero bytes. */
async function rawFile(dir: string, header: string, dataBytes: number, lengthOverride?: bigint): Promise<string> {
  const json = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  bytes.set(json, 8);
  const path = `${dir}/t${crypto.randomUUID().slice(0, 8)}.safetensors`;
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("safetensors: tensors of every kind round-trip with metadata, 8-byte aligned data", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  try {
    const f32 = rng.normals(7 * 13);
    const bf16 = toBf16(rng.normals(5));
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00, 0x8000]); // 1, -2, ~1/3, min subnormal, inf, -0
    const i64 = new BigInt64Array([-1n, 1n << 40n, 7n]);
    const u8 = new Uint8Array([0, 255, 3]);
    const path = `${dir}/a.safetensors`;
    await writeSafetensors(path, {
      "w.f32": { dtype: "F32", shape: [7, 13], data: f32 },
      "w.bf16": { dtype: "BF16", shape: [5], data: bf16 },
      "w.f16": { dtype: "F16", shape: [2, 3], data: f16 },
      "w.i64": { dtype: "I64", shape: [3], data: i64 },
      "w.u8": { dtype: "U8", shape: [3], data: u8 },
      scalar: { dtype: "F32", shape: [], data: new Float32Array([4.5]) },
      empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    }, { format: "pt", note: "ünïcode" });
    using f = await SafetensorsFile.open(path);
    assert.deepEqual(f.metadata, { format: "pt", note: "ünïcode" });
    const headerLength = Number(new DataView((await Deno.readFile(path)).buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0, "header padded to 8 bytes");
    for (const t of f.tensors.values()) {
      const size = { F32: 4, BF16: 2, F16: 2, I64: 8, U8: 1 }[t.dtype as "F32"];
      assert.equal(t.offset % size, 0, `${t.name} aligned to its element size`);
    }
    assert.deepEqual(await f.readFloat32("w.f32"), f32, `seed ${rng.seed}`);
    assert.deepEqual(f.info("w.f32").shape, [7, 13]);
    assert.deepEqual(await f.readFloat32("w.bf16"), fromBf16(bf16));
    assert.deepEqual([...await f.readFloat32("w.f16")], [1, -2, 0.333251953125, 2 ** -24, Infinity, -0]);
    assert.deepEqual(new BigInt64Array((await f.readBytes("w.i64")).buffer), i64);
    assert.deepEqual(await f.readBytes("w.u8"), u8);
    assert.deepEqual(await f.readFloat32("scalar"), new Float32Array([4.5]));
    assert.deepEqual(f.info("scalar").shape, []);
    assert.equal((await f.readBytes("empty")).length, 0);
    assert.throws(() => toFloat32("I64", new Uint8Array(8), "w.i64"), /w\.i64" is I64, not a float type/);
    await assert.rejects(f.readBytes("missing"), /a\.safetensors: no tensor named "missing"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: concurrent reads of one file each get their own tensor", async () => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  try {
    const tensors = Object.fromEntries(
      Array.from(
        { length: 9 },
        (_, i) => [`t${i}`, { dtype: "F32" as const, shape: [i + 3], data: rng.normals(i + 3) }],
      ),
    );
    await writeSafetensors(`${dir}/c.safetensors`, tensors);
    using f = await SafetensorsFile.open(`${dir}/c.safetensors`);
    const got = await Promise.all(Object.keys(tensors).map((n) => f.readFloat32(n)));
    got.forEach((g, i) => assert.deepEqual(g, tensors[`t${i}`].data, `t${i}, seed ${rng.seed}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: the real stories260K checkpoint reads; its bf16 copy is the rounded f32", async () => {
  using f32 = await SafetensorsCheckpoint.open(STORIES);
  using bf16 = await SafetensorsCheckpoint.open(`${STORIES}model.bf16.safetensors`);
  assert.equal(f32.names().length, 47);
  assert.deepEqual(f32.info("model.embed_tokens.weight").shape, [512, 64]);
  assert.deepEqual(f32.info("model.layers.4.mlp.down_proj.weight").shape, [64, 172]);
  for (
    const name of ["model.layers.0.self_attn.q_proj.weight", "model.norm.weight", "model.layers.4.mlp.up_proj.weight"]
  ) {
    assert.equal(bf16.info(name).dtype, "BF16");
    const raw = await bf16.readBytes(name);
    assert.deepEqual(new Uint16Array(raw.buffer), toBf16(await f32.readFloat32(name)), name);
  }
});

// Each case: a header (and data size) that breaks one rule, and what the error must say.
const INVALID: { what: string; header: string; data: number; length?: bigint; error: RegExp }[] = [
  { what: "header length past the end", header: "{}", data: 0, length: 1000n, error: /runs past the end of the file/ },
  { what: "header length absurd", header: "{}", data: 0, length: 1n << 40n, error: /exceeds 100000000 bytes/ },
  { what: "not JSON", header: "{oops", data: 0, error: /not valid UTF-8 JSON/ },
  { what: "not an object", header: "[1]", data: 0, error: /does not start with '\{'/ },
  {
    what: "unknown dtype",
    header: '{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}',
    data: 2,
    error: /"w": unknown dtype "F12"/,
  },
  {
    what: "negative dim",
    header: '{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}',
    data: 0,
    error: /shape must be an array of non-negative/,
  },
  {
    what: "offsets reversed",
    header: '{"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}',
    data: 1,
    error: /data_offsets must be \[begin, end\]/,
  },
  {
    what: "size mismatch",
    header: '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}',
    data: 20,
    error: /needs 24 bytes but data_offsets \[0, 20\] span 20/,
  },
  {
    what: "past the data",
    header: '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
    data: 8,
    error: /run past the data section \(8 bytes\)/,
  },
  {
    what: "overlap",
    header:
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    data: 12,
    error: /"a" and "b" overlap/,
  },
  {
    what: "hole",
    header:
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
    data: 12,
    error: /bytes \[4, 8\) before tensor "b" belong to no tensor/,
  },
  {
    what: "trailing data",
    header: '{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}',
    data: 5,
    error: /holds 5 bytes but the tensors cover 2/,
  },
  { what: "bad metadata", header: '{"__metadata__":{"n":1}}', data: 0, error: /__metadata__\["n"\] must be a string/ },
  {
    what: "sub-byte count",
    header: '{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}',
    data: 2,
    error: /not a whole number of bytes/,
  },
];

Deno.test("safetensors: invalid headers are refused with the file and the problem named", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    for (const c of INVALID) {
      await t.step(c.what, async () => {
        const path = await rawFile(dir, c.header, c.data, c.length);
        const err = await SafetensorsFile.open(path).then(() => null, (e) => e);
        assert.ok(err instanceof SafetensorsError, `${c.what}: expected a SafetensorsError, got ${err}`);
        assert.equal(err.path, path);
        assert.ok(err.message.startsWith(path + ": "), err.message);
        assert.match(err.message, c.error);
      });
    }
    await t.step("too short", async () => {
      await Deno.writeFile(`${dir}/short.safetensors`, new Uint8Array(5));
      await assert.rejects(SafetensorsFile.open(`${dir}/short.safetensors`), /5 bytes is too short/);
    });
    await t.step("a valid hand-made file passes the same checks", async () => {
      const path = await rawFile(
        dir,
        '{"a":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},"z":{"dtype":"F4","shape":[2],"data_offsets":[3,4]}}',
        4,
      );
      using f = await SafetensorsFile.open(path);
      assert.deepEqual([...f.tensors.keys()], ["a", "z"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: writes are atomic: a failed write leaves the old file and no temporary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await writeSafetensors(path, { a: { dtype: "F32", shape: [1], data: new Float32Array([1]) } });
    await writeSafetensors(path, { a: { dtype: "F32", shape: [1], data: new Float32Array([2]) } });
    await assert.rejects(
      writeSafetensors(path, { a: { dtype: "F32", shape: [2], data: new Float32Array([3]) } }),
      /"a": shape \[2\] of F32 needs 8 bytes, the data have 4/,
    );
    using f = await SafetensorsFile.open(path);
    assert.deepEqual(await f.readFloat32("a"), new Float32Array([2]));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["w.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: a sharded checkpoint reads through its index; bad indexes are named", async (t) => {
  const rng = new Rng();
  const dir = await Deno.makeTempDir();
  try {
    const a = rng.normals(6), b = rng.normals(5), c = rng.normals(3);
    await writeSafetensors(`${dir}/model-00001-of-00002.safetensors`, {
      "x.a": { dtype: "F32", shape: [2, 3], data: a },
      "x.b": { dtype: "F32", shape: [5], data: b },
    });
    await writeSafetensors(`${dir}/model-00002-of-00002.safetensors`, { "x.c": { dtype: "F32", shape: [3], data: c } });
    const index = (map: Record<string, string>) =>
      Deno.writeTextFile(`${dir}/${INDEX_FILE}`, JSON.stringify({ metadata: { total_size: 56 }, weight_map: map }));
    await index({
      "x.a": "model-00001-of-00002.safetensors",
      "x.b": "model-00001-of-00002.safetensors",
      "x.c": "model-00002-of-00002.safetensors",
    });

    await t.step("reads from both shards", async () => {
      using ckpt = await SafetensorsCheckpoint.open(dir);
      assert.deepEqual(ckpt.names(), ["x.a", "x.b", "x.c"]);
      assert.deepEqual(ckpt.info("x.a").shape, [2, 3]);
      assert.deepEqual(await ckpt.readFloat32("x.c"), c, `seed ${rng.seed}`);
      assert.deepEqual(await ckpt.readFloat32("x.b"), b, `seed ${rng.seed}`);
      assert.throws(() => ckpt.info("x.d"), /no tensor named "x.d" in this checkpoint/);
    });
    const bad: [string, Record<string, string>, RegExp][] = [
      [
        "a name the shard lacks",
        { "x.z": "model-00002-of-00002.safetensors" },
        /puts "x.z" in model-00002-of-00002.safetensors, which has no such tensor/,
      ],
      [
        "a path outside the folder",
        { "x.a": "../model-00001-of-00002.safetensors" },
        /must be a shard file name in this folder/,
      ],
      [
        "a missing shard",
        { "x.a": "model-00003-of-00003.safetensors" },
        /model-00003-of-00003.safetensors: cannot open/,
      ],
    ];
    for (const [what, map, error] of bad) {
      await t.step(what, async () => {
        await index(map);
        await assert.rejects(SafetensorsCheckpoint.open(dir), error);
      });
    }
    await t.step("several files and no index", async () => {
      await Deno.remove(`${dir}/${INDEX_FILE}`);
      await assert.rejects(SafetensorsCheckpoint.open(dir), /several .safetensors files .* pass the file itself/);
    });
    await t.step("no weights at all", async () => {
      const empty = await Deno.makeTempDir({ dir });
      await assert.rejects(
        SafetensorsCheckpoint.open(empty),
        /no model.safetensors, \*.safetensors or model.safetensors.index.json/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
