/**
 * Bad input through the real command line, one row per kind of mistake a
 * user makes: each row builds its bad input in a temporary folder, runs
 * `lorac train` or `lorac predict` as a subprocess on the tiny real model
 * stories260K, and checks what the user sees and what is left on disk:
 *
 * 1. a non-zero exit;
 * 2. stderr is exactly one line, `lorac: ...`, that names the culprit (the
 *    file, line, field or flag) and says what to do;
 * 3. no partial outputs: the output folder holds nothing new (no adapter,
 *    no results, no temporary files), or does not exist.
 *
 * Rows run a few at a time in parallel; the whole file takes about 15 s on
 * 2 cores.
 *
 * @module
 */

import assert from "node:assert/strict";
import { writePeftAdapter } from "../lib/formats/peft_adapter.ts";
import { storiesHfFolder } from "./reference/stories_tokenizer.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Hub settings that keep every run off the network and away from the user's cache and token. */
const quietEnv = (root: string): Record<string, string> => ({
  NO_COLOR: "1",
  RUST_BACKTRACE: "0",
  HF_HOME: `${root}/hf`,
  HF_HUB_OFFLINE: "1",
  HF_TOKEN: "",
});

/**
 * Runs the command line. `setUp`: let Deno set node_modules up (the fixture's first runs); the rows then leave it
 * as it is, so that no run waits on another's lock and prints Deno's "Blocking waiting for file lock" line.
 */
async function lorac(args: string[], env: Record<string, string>, wrap: string[] = [], setUp = false): Promise<Run> {
  const nodeModules = setUp ? [] : ["--node-modules-dir=manual"];
  const argv = [...wrap, Deno.execPath(), "run", ...nodeModules, "-A", MAIN, ...args];
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), env, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Every file and folder under `dir` with its size and mtime, sorted (a file: its own); null when `dir` does not exist. */
async function tree(dir: string): Promise<string[] | null> {
  const top = await Deno.stat(dir).catch(() => null);
  if (top === null) return null;
  if (!top.isDirectory) return [`${top.size} ${top.mtime?.getTime()}`];
  const found: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const s = await Deno.lstat(`${dir}/${path}`);
      found.push(`${path} ${s.isDirectory ? "dir" : s.size} ${s.mtime?.getTime()}`);
      if (e.isDirectory) await walk(path);
    }
  };
  await walk("");
  return found.sort();
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** A safetensors file's header (the JSON after the 8-byte length) and its data bytes. */
async function readSafetensors(path: string): Promise<{ header: Record<string, unknown>; data: Uint8Array }> {
  const bytes = await Deno.readFile(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

async function writeRawSafetensors(path: string, header: Record<string, unknown>, data: Uint8Array): Promise<void> {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  await Deno.writeFile(path, out);
}

/** Rewrites the header entry of the model's final norm (64 f32 values) with `edit`. */
async function editNormEntry(model: string, edit: (entry: Record<string, unknown>) => void): Promise<void> {
  const path = `${model}/model.safetensors`;
  const { header, data } = await readSafetensors(path);
  edit(header["model.norm.weight"] as Record<string, unknown>);
  await writeRawSafetensors(path, header, data);
}

/** A GGUF v3 holding one llama metadata key and one 64 x 512 tensor of ggml type `type`. */
function ggufWithType(type: number): Uint8Array {
  const bytes: number[] = [];
  const u32 = (n: number) => bytes.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24);
  const u64 = (n: number) => (u32(n), u32(0));
  const str = (s: string) => (u64(s.length), bytes.push(...new TextEncoder().encode(s)));
  bytes.push(..."GGUF".split("").map((c) => c.charCodeAt(0)));
  u32(3), u64(1), u64(1);
  str("general.architecture"), u32(8), str("llama");
  str("token_embd.weight"), u32(2), u64(64), u64(512), u32(type), u64(0);
  while (bytes.length % 32 !== 0) bytes.push(0);
  return new Uint8Array([...bytes, ...new Uint8Array(64 * 512 * 4)]);
}

/** A local Hub that refuses every request with `status`, as a gated repository refuses a bad token. */
function refusingHub(status: 401 | 403): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () =>
    new Response(null, {
      status,
      headers: { "X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model lorac-test/gated is restricted." },
    }));
}

// Two columns of text and a label; names unlike the seed's defaults, so every run must pass them.
const GOOD_CSV = "subject,body,category\r\n" +
  "sun day,the girl ran to the park,happy\r\n" +
  "tree day,a boy saw a bird,big\r\n" +
  "dog day,the dog played with a ball,friend\r\n" +
  "sun day,a little girl in the garden,happy\r\n";

/** The good inputs every row starts from: model folder, CSVs, and an adapter trained once on them. */
interface Fixture {
  root: string;
  model: string;
  data: string;
  adapter: string;
  hasGpu: boolean;
  userNamespaces: boolean;
}

const trainFlags = (f: Fixture, out: string): Record<string, string[]> => ({
  "--base_path": [f.data],
  "--train_file": ["train.csv"],
  "--val_file": ["validation.csv"],
  "--text_fields": ["subject", "body"],
  "--label_column": ["category"],
  "--base_model_name": [f.model],
  "--output_dir": [out],
  "--num_train_epochs": ["1"],
  "--report_to": ["none"],
  "--device": ["cpu"],
});

const predictFlags = (f: Fixture, out: string): Record<string, string[]> => ({
  "--base_path": [f.data],
  "--test_file": ["test.csv"],
  "--output_dir": [out],
  "--device": ["cpu"],
});

function argv(command: string, flags: Record<string, string[] | null>): string[] {
  const args = [command];
  for (const [flag, values] of Object.entries(flags)) if (values !== null) args.push(flag, ...values);
  return args;
}

async function fixture(): Promise<Fixture> {
  const root = await Deno.makeTempDir({ prefix: "lorac-bad-input-" });
  const f: Fixture = {
    root,
    model: `${root}/stories260K`,
    data: `${root}/data`,
    adapter: `${root}/adapter`,
    hasGpu: false,
    userNamespaces: false,
  };
  await storiesHfFolder(f.model);
  await Deno.mkdir(f.data);
  for (const name of ["train.csv", "validation.csv", "test.csv"]) {
    await Deno.writeTextFile(`${f.data}/${name}`, GOOD_CSV);
  }
  const [trained, cuda, unshare] = await Promise.all([
    lorac(argv("train", trainFlags(f, f.adapter)), quietEnv(root), [], true),
    lorac(["info", "--device", "cuda"], quietEnv(root), [], true),
    new Deno.Command("unshare", { args: ["-rm", "true"], stdout: "null", stderr: "null" }).output().catch(() => null),
  ]);
  assert.equal(trained.code, 0, `the good run trains: ${trained.stderr}`);
  f.hasGpu = cuda.code === 0;
  f.userNamespaces = unshare?.success ?? false;
  return f;
}

/** One kind of bad input. */
interface Row {
  /** What is wrong, in the user's words. */
  kind: string;
  command: "train" | "predict";
  /**
   * Builds the bad input in `dir` and returns the flags that differ from a
   * good run (null drops a flag), extra environment, and a command to wrap
   * the run in (a resource limit, a mount namespace).
   */
  setup(dir: string, f: Fixture): Promise<RowSetup>;
  /** Texts the one line must hold: the culprit, and the fix. */
  says(dir: string, f: Fixture): string[];
  /** The fix a parser's message must also give, in words it may vary (`note` says which). */
  hint?: { text: RegExp; note: string };
  /** Skipped here (no such environment), with why. */
  ignore?(f: Fixture): boolean;
  /**
   * Fails after real work (a full disk while saving), so the progress lines of that work (model loading, steps)
   * come first: the error must then be the last line of stderr and the only `lorac: ` line.
   */
  afterWork?: boolean;
}

interface RowSetup {
  flags?: Record<string, string[] | null>;
  env?: Record<string, string>;
  wrap?: string[];
  /** Paths left behind that the default output check cannot see (a mount gone with its namespace). */
  leftovers?: () => Promise<string[]>;
  /** Runs after the command, e.g. to stop a server. */
  done?: () => Promise<void>;
}

/** A training run on `file` holding `text` (null: no such file). */
const csvRow = (kind: string, file: string, text: string | Uint8Array | null, says: string[]): Row => ({
  kind,
  command: "train",
  async setup(dir) {
    if (typeof text === "string") await Deno.writeTextFile(`${dir}/${file}`, text);
    else if (text !== null) await Deno.writeFile(`${dir}/${file}`, text);
    return { flags: { "--base_path": [dir], "--train_file": [file], "--val_file": ["none"] } };
  },
  says: (dir) => [`${dir}/${file}`, ...says],
});

const flagRow = (kind: string, flags: Record<string, string[]>, message: string): Row => ({
  kind,
  command: "train",
  setup: () => Promise.resolve({ flags }),
  says: () => [message],
});

/** A copy of the good model with one thing broken. */
const modelRow = (
  kind: string,
  breakIt: (model: string) => Promise<void>,
  says: (model: string) => string[],
  hint?: Row["hint"],
): Row => ({
  kind,
  command: "train",
  hint,
  async setup(dir, f) {
    await copyDir(f.model, `${dir}/model`);
    await breakIt(`${dir}/model`);
    return { flags: { "--base_model_name": [`${dir}/model`] } };
  },
  says: (dir) => says(`${dir}/model`),
});

/** A training run whose writes the kernel refuses past `blocks` x 512 bytes per file (SIGXFSZ ignored). */
const fileSizeLimit = (blocks: number) => ["sh", "-c", `trap '' XFSZ; ulimit -f ${blocks}; exec "$@"`, "sh"];

const ROWS: Row[] = [
  csvRow("missing CSV", "nowhere.csv", null, ["no such file", "check --base_path and the file name"]),
  csvRow("empty CSV", "empty.csv", "", ["the file is empty", "needs a header line"]),
  {
    kind: "missing label column",
    command: "train",
    setup: () => Promise.resolve({ flags: { "--label_column": ["topic"] } }),
    says: (_, f) => [`${f.data}/train.csv`, 'no column "topic" (--label_column)', '"subject", "body", "category"'],
  },
  {
    kind: "missing text column",
    command: "train",
    setup: () => Promise.resolve({ flags: { "--text_fields": ["subject", "text"] } }),
    says: (_, f) => [`${f.data}/train.csv`, 'no column "text" (--text_fields)', '"subject", "body", "category"'],
  },
  {
    kind: "unknown label at training (outside --labels)",
    command: "train",
    setup: () => Promise.resolve({ flags: { "--labels": ["happy", "big"] } }),
    says: (_, f) => [`${f.data}/train.csv: line 4`, 'label "friend" is not one of happy, big', "add it to --labels"],
  },
  csvRow("all-blank texts", "blank.csv", "subject,body,category\n ,  ,happy\n,,big\n", [
    "line 2",
    "the text fields (subject, body) are all blank",
    "fill one in or remove the row",
  ]),
  csvRow(
    "non-UTF-8 bytes in the CSV",
    "latin1.csv",
    new Uint8Array([
      ...new TextEncoder().encode("subject,body,category\ncaf"),
      0xe9,
      ...new TextEncoder().encode(",x,happy\n"),
    ]),
    ["line 2", "(0xe9) is not UTF-8", "re-save the file as UTF-8"],
  ),
  csvRow("duplicate header", "twice.csv", "subject,body,body,category\na,b,c,happy\n", [
    "line 1",
    'column "body" appears twice',
    "rename one",
  ]),
  flagRow(
    "--labels with duplicates",
    { "--labels": ["happy", "big", "happy"] },
    '--labels names "happy" twice; list each label once',
  ),
  {
    kind: "output dir that is a file",
    command: "train",
    async setup(dir) {
      await Deno.writeTextFile(`${dir}/out`, "a file, not a folder\n");
      return {};
    },
    says: (dir) => [`--output_dir ${dir}/out is a file`, "choose a folder"],
  },
  {
    kind: "unknown base model path",
    command: "train",
    setup: (dir) => Promise.resolve({ flags: { "--base_model_name": [`${dir}/no-such-model`] } }),
    says: (dir) => [`${dir}/no-such-model is not a folder, a file or a Hub id`, "pass a model folder, a .gguf file"],
  },
  {
    kind: "unknown base model path that reads as a Hub id (offline)",
    command: "train",
    setup: () => Promise.resolve({ flags: { "--base_model_name": ["models/no-such-llama"] } }),
    says:
      () => ["HF_HUB_OFFLINE is set and models/no-such-llama", "there is no local folder models/no-such-llama either"],
  },
  modelRow(
    "config.json of another architecture (gpt2)",
    async (m) => {
      const config = JSON.parse(await Deno.readTextFile(`${m}/config.json`));
      await Deno.writeTextFile(
        `${m}/config.json`,
        JSON.stringify({ ...config, model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
      );
    },
    (m) => [`${m}/config.json`, '["GPT2LMHeadModel"] is not a Llama-family causal LM', "lorac runs LlamaForCausalLM"],
  ),
  modelRow(
    "safetensors header: offsets outside the file",
    (m) =>
      editNormEntry(m, (e) => {
        e.data_offsets = [10_000_000, 10_000_256];
      }),
    (m) => [`${m}/model.safetensors`, "model.norm.weight", "10000000"],
    { text: /download it again|re-download/, note: "a damaged safetensors file: say to download it again" },
  ),
  modelRow(
    "safetensors header: shape x dtype != byte span",
    (m) =>
      editNormEntry(m, (e) => {
        e.shape = [65];
      }),
    (m) => [`${m}/model.safetensors`, "model.norm.weight", "[65]"],
    { text: /download it again|re-download/, note: "a damaged safetensors file: say to download it again" },
  ),
  modelRow(
    "safetensors header: unknown dtype",
    (m) =>
      editNormEntry(m, (e) => {
        e.dtype = "F42";
      }),
    (m) => [`${m}/model.safetensors`, "model.norm.weight", "F42"],
    { text: /convert/, note: "an unknown safetensors dtype: say to convert the weights to a float type lorac reads" },
  ),
  modelRow(
    "truncated safetensors",
    async (m) => {
      const bytes = await Deno.readFile(`${m}/model.safetensors`);
      await Deno.writeFile(`${m}/model.safetensors`, bytes.subarray(0, bytes.length >> 1));
    },
    (m) => [`${m}/model.safetensors`, "truncated"],
    { text: /download it again|re-download/, note: "a truncated safetensors file: say to download it again" },
  ),
  {
    kind: "GGUF with bad magic",
    command: "train",
    async setup(dir) {
      await Deno.writeFile(`${dir}/model.gguf`, new TextEncoder().encode("GGUX\x03\0\0\0 not a model at all"));
      return { flags: { "--base_model_name": [`${dir}/model.gguf`] } };
    },
    says: (dir) => [`${dir}/model.gguf`, 'not "GGUF"', "not a GGUF file"],
    hint: { text: /download|convert/, note: "bad GGUF magic: say to download or convert the model again" },
  },
  {
    kind: "GGUF with an unknown quant type",
    command: "train",
    async setup(dir) {
      await Deno.writeFile(`${dir}/model.gguf`, ggufWithType(99));
      return { flags: { "--base_model_name": [`${dir}/model.gguf`] } };
    },
    says: (dir) => [`${dir}/model.gguf`, "token_embd.weight", "unknown ggml type 99"],
    hint: { text: /re-convert/, note: "an unknown ggml type: say to re-convert the model with llama.cpp" },
  },
  modelRow(
    "tokenizer.json missing",
    (m) => Deno.remove(`${m}/tokenizer.json`),
    (m) => [`${m}/tokenizer.json`, "missing", "--tokenizer"],
  ),
  modelRow(
    "tokenizer.json malformed",
    (m) => Deno.writeTextFile(`${m}/tokenizer.json`, '{"model": {"type": "BPE", "vocab": '),
    (m) => [`${m}/tokenizer.json`, "cannot build the tokenizer", "--tokenizer"],
  ),
  {
    kind: "adapter whose shapes do not fit the base (made for hidden 128)",
    command: "predict",
    async setup(dir, f) {
      const [r, dim] = [2, 128];
      await writePeftAdapter(`${dir}/out`, {
        config: {
          r,
          loraAlpha: 2,
          loraDropout: 0,
          targetModules: ["q_proj"],
          useRslora: false,
          baseModelNameOrPath: "lorac-test/llama-128",
        },
        modules: Array.from({ length: 5 }, (_, layer) => ({
          module: `model.layers.${layer}.self_attn.q_proj`,
          r,
          inFeatures: dim,
          outFeatures: dim,
          a: new Float32Array(r * dim),
          b: new Float32Array(dim * r),
        })),
      });
      return {
        flags: { "--base_model_name": [f.model], "--text_fields": ["subject", "body"], "--label_column": ["category"] },
      };
    },
    says: (dir, f) => [
      `${dir}/out/adapter_model.safetensors`,
      `does not fit ${f.model}`,
      "model.layers.0.self_attn.q_proj",
      "trained on lorac-test/llama-128",
      "--base_model_name",
    ],
  },
  {
    kind: "HF_TOKEN refused (HTTP 401)",
    command: "train",
    setup(dir) {
      const hub = refusingHub(401);
      return Promise.resolve({
        flags: { "--base_model_name": ["lorac-test/gated"] },
        env: {
          HF_ENDPOINT: `http://127.0.0.1:${hub.addr.port}`,
          HF_TOKEN: "hf_refused",
          HF_HUB_OFFLINE: "0",
          HF_HOME: `${dir}/hf`,
        },
        done: () => hub.shutdown(),
      });
    },
    says: () => ["HF_TOKEN was rejected for lorac-test/gated (HTTP 401)", "check the token at http://127.0.0.1:"],
  },
  {
    kind: "HF_TOKEN without access (HTTP 403)",
    command: "train",
    setup(dir) {
      const hub = refusingHub(403);
      return Promise.resolve({
        flags: { "--base_model_name": ["lorac-test/gated"] },
        env: {
          HF_ENDPOINT: `http://127.0.0.1:${hub.addr.port}`,
          HF_TOKEN: "hf_no_access",
          HF_HUB_OFFLINE: "0",
          HF_HOME: `${dir}/hf`,
        },
        done: () => hub.shutdown(),
      });
    },
    says: () => ["HF_TOKEN has no access to lorac-test/gated (HTTP 403)", "accept its license at http://127.0.0.1:"],
  },
  {
    kind: "no space left on the output's disk (a 16 KiB tmpfs in a user namespace)",
    command: "train",
    afterWork: true,
    ignore: (f) => !f.userNamespaces,
    async setup(dir) {
      await Deno.mkdir(`${dir}/mnt`);
      // The mount lives as long as the namespace: list what is left in it before leaving.
      const script = 'mount -t tmpfs -o size=16k tmpfs "$0" || exit 99; "$@"; rc=$?; ' +
        'find "$0" -mindepth 1 > "$0.left"; exit $rc';
      return {
        flags: { "--output_dir": [`${dir}/mnt/out`] },
        wrap: ["unshare", "-rm", "sh", "-c", script, `${dir}/mnt`],
        leftovers: async () => (await Deno.readTextFile(`${dir}/mnt.left`)).split("\n").filter((l) => l !== ""),
      };
    },
    says: (dir) => [`${dir}/mnt/out/`, "No space left on device", "free disk space"],
  },
  {
    kind: "a write refused midway (file size limit, as a full disk refuses it)",
    command: "train",
    afterWork: true,
    setup: () => Promise.resolve({ wrap: fileSizeLimit(16) }),
    says: (dir) => [`${dir}/out/`, "File too large", "free disk space"],
  },
  {
    kind: "predict: results refused midway (file size limit)",
    command: "predict",
    afterWork: true,
    async setup(dir, f) {
      await copyDir(f.adapter, `${dir}/out`);
      return { wrap: fileSizeLimit(1) };
    },
    says: (dir) => [`${dir}/out/`, "File too large", "free disk space"],
  },
  flagRow("--lora_r 0", { "--lora_r": ["0"] }, '--lora_r must be a positive integer, got "0"'),
  flagRow(
    "negative --learning_rate",
    { "--learning_rate": ["-2e-4"] },
    '--learning_rate must be a positive number, got "-2e-4"',
  ),
  flagRow("--batch_tokens 0", { "--batch_tokens": ["0"] }, '--batch_tokens must be a positive integer, got "0"'),
  flagRow(
    "--per_device_train_batch_size 0",
    { "--per_device_train_batch_size": ["0"] },
    '--per_device_train_batch_size must be a positive integer, got "0"',
  ),
  flagRow(
    "--num_train_epochs -1",
    { "--num_train_epochs": ["-1"] },
    '--num_train_epochs must be a positive integer, got "-1"',
  ),
  flagRow(
    "--compute_dtype fp16",
    { "--compute_dtype": ["fp16"] },
    '--compute_dtype must be one of f32, bf16, got "fp16"',
  ),
  {
    kind: "--device cuda with no GPU",
    command: "train",
    ignore: (f) => f.hasGpu,
    setup: () => Promise.resolve({ flags: { "--device": ["cuda"] } }),
    says: () => ["--device cuda: no usable GPU", "use --device cpu or auto"],
  },
  {
    kind: "predict: no adapter in --output_dir",
    command: "predict",
    async setup(dir) {
      await Deno.mkdir(`${dir}/out`);
      return { flags: { "--text_fields": ["subject", "body"], "--label_column": ["category"] } };
    },
    says: (dir) => [
      `no trained adapter in ${dir}/out (it has no adapter_config.json)`,
      `run \`lorac train --output_dir ${dir}/out\` first`,
    ],
  },
  {
    kind: "predict: --results_dir that is a file",
    command: "predict",
    async setup(dir, f) {
      await copyDir(f.adapter, `${dir}/out`);
      await Deno.writeTextFile(`${dir}/results`, "a file\n");
      return { flags: { "--results_dir": [`${dir}/results`] } };
    },
    says: (dir) => [`--results_dir ${dir}/results is a file`, "choose a folder"],
  },
];

async function check(row: Row, f: Fixture, index: number): Promise<void> {
  const dir = `${f.root}/row${index}`;
  await Deno.mkdir(dir);
  const out = `${dir}/out`;
  const setup = await row.setup(dir, f);
  const defaults = row.command === "train" ? trainFlags(f, out) : predictFlags(f, out);
  const before = await tree(out);
  let r: Run;
  try {
    r = await lorac(
      argv(row.command, { ...defaults, ...setup.flags }),
      { ...quietEnv(f.root), ...setup.env },
      setup.wrap,
    );
  } finally {
    await setup.done?.();
  }
  const what = `${row.kind}: ${r.stderr}`;
  assert.notEqual(r.code, 0, `${row.kind}: exit status`);
  const lines = r.stderr.split("\n");
  const error = row.afterWork ? lines.at(-2) : r.stderr.replace(/\n$/, "");
  assert.match(error ?? "", /^lorac: [^\n]+$/, `${row.kind}: one line on stderr, got:\n${r.stderr}`);
  assert.equal(lines.filter((l) => l.startsWith("lorac: ")).length, 1, `${row.kind}: one error, got:\n${r.stderr}`);
  assert.ok(r.stderr.endsWith("\n"), `${row.kind}: a whole line`);
  for (const text of row.says(dir, f)) assert.ok(r.stderr.includes(text), `${what} should say ${JSON.stringify(text)}`);
  assert.equal(r.stdout, "", `${row.kind}: nothing on stdout`);
  if (row.hint) assert.match(r.stderr, row.hint.text, `${row.kind}: ${row.hint.note}`);
  if (setup.leftovers) assert.deepEqual(await setup.leftovers(), [], `${row.kind}: left behind`);
  else assert.deepEqual(await tree(out), before, `${row.kind}: the output folder holds nothing new`);
}

Deno.test(`cli: ${ROWS.length} kinds of bad input each end with one line naming the culprit and the fix, and no outputs`, async (t) => {
  const f = await fixture();
  const PARALLEL = 4;
  for (let i = 0; i < ROWS.length; i += PARALLEL) {
    await Promise.all(
      ROWS.slice(i, i + PARALLEL).map((row, k) =>
        t.step({
          name: row.kind,
          ignore: row.ignore?.(f) ?? false,
          fn: () => check(row, f, i + k),
          sanitizeOps: false,
          sanitizeResources: false,
          sanitizeExit: false,
        })
      ),
    );
  }
  // Decided: an adapter whose config names another base, but whose shapes fit the model given, still runs (a model
  // moved to another folder, or a Hub id and its download, are the same model) with one warning line that names both.
  await t.step("adapter for another base model whose shapes fit: one warning line, then it runs", async () => {
    const dir = `${f.root}/other-base`;
    await copyDir(f.adapter, dir);
    await Deno.remove(`${dir}/training_args.json`); // as PEFT leaves it: the base is named in adapter_config.json only
    const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    config.base_model_name_or_path = "meta-llama/Llama-3.2-1B";
    await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(config));
    const flags = {
      "--base_model_name": [f.model],
      "--text_fields": ["subject", "body"],
      "--label_column": ["category"],
    };
    const r = await lorac(argv("predict", { ...predictFlags(f, dir), ...flags }), quietEnv(f.root));
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.split("\n").filter((l) => l.includes("warning"));
    assert.deepEqual(warnings, [
      `lorac: warning: ${dir}/adapter_config.json says the adapter was trained on meta-llama/Llama-3.2-1B, ` +
      `this run uses ${f.model}: unless they are the same model, pass --base_model_name meta-llama/Llama-3.2-1B`,
    ]);
    assert.ok(await Deno.stat(`${dir}/results.txt`), "the results are written");
  });
  await Deno.remove(f.root, { recursive: true });
});
