import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { hubDownload } from "../lib/hub/download.ts";
import { HubError, type HubErrorCode } from "../lib/hub/errors.ts";
import { downloadModel, resolveModel } from "../lib/hub/model.ts";
import type { ProgressSink } from "../lib/ui/progress.ts";
import { Rng } from "./reference/random.ts";

// A local stand-in for the Hub: /{org}/{name}/resolve/{rev}/{file} with the Hub's headers,
// LFS files (*.safetensors) redirected to a second server on another origin, as the real CDN is.

interface Repo {
  commit: string;
  files: Record<string, Uint8Array>;
  /** Gated: only this token gets in (401 without one, 403 with another). */
  token?: string;
}

interface Hit {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | null;
  auth: string | null;
}

const text = (s: string) => new TextEncoder().encode(s);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const isLfs = (name: string) => name.endsWith(".safetensors");

function errorResponse(status: number, code: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status, headers: { "X-Error-Code": code, "X-Error-Message": code, ...headers } });
}

type Interruption = "drop" | "stall";

function serveBytes(req: Request, bytes: Uint8Array, headers: Record<string, string>, cut?: Interruption): Response {
  const range = /^bytes=(\d+)-$/.exec(req.headers.get("Range") ?? "");
  const start = range ? Number(range[1]) : 0;
  if (start >= bytes.length && bytes.length > 0) {
    return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${bytes.length}` } });
  }
  const status = range ? 206 : 200;
  const all: Record<string, string> = { ...headers, "Content-Length": String(bytes.length - start) };
  if (range) all["Content-Range"] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
  if (req.method === "HEAD") return new Response(null, { status, headers: all });
  const rest = bytes.subarray(start);
  // Sending less than Content-Length and closing is what a dropped connection looks like to the client;
  // sending half and then nothing is a stalled one.
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(cut ? rest.subarray(0, rest.length >> 1) : rest);
      if (cut !== "stall") c.close();
    },
  });
  return new Response(body, { status, headers: all });
}

class FakeHub implements AsyncDisposable {
  readonly hits: Hit[] = [];
  /** sha256 of blobs whose next GET stops halfway, and how. */
  readonly interruptOnce = new Map<string, Interruption>();
  readonly #repos: Record<string, Repo>;
  readonly #hub: Deno.HttpServer<Deno.NetAddr>;
  readonly #cdn: Deno.HttpServer<Deno.NetAddr>;

  constructor(repos: Record<string, Repo>) {
    this.#repos = repos;
    const opts = { hostname: "127.0.0.1", port: 0, onListen: () => {} };
    this.#hub = Deno.serve(opts, (req) => this.#serveHub(req));
    this.#cdn = Deno.serve(opts, (req) => this.#serveCdn(req));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#hub.addr.port}`;
  }

  hitsOf(server: "hub" | "cdn"): Hit[] {
    return this.hits.filter((h) => h.server === server);
  }

  #record(server: Hit["server"], req: Request): void {
    const h = req.headers;
    const path = decodeURIComponent(new URL(req.url).pathname);
    this.hits.push({ server, method: req.method, path, range: h.get("Range"), auth: h.get("Authorization") });
  }

  #serveHub(req: Request): Response {
    this.#record("hub", req);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url).pathname);
    if (!m) return new Response(null, { status: 404 });
    const [repoId, rev, file] = [m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3])];
    const repo = this.#repos[repoId];
    if (!repo) return errorResponse(401, "RepoNotFound");
    const auth = req.headers.get("Authorization");
    if (repo.token !== undefined && auth === null) return errorResponse(401, "GatedRepo");
    if (repo.token !== undefined && auth !== `Bearer ${repo.token}`) return errorResponse(403, "GatedRepo");
    if (rev !== "main" && rev !== repo.commit) return errorResponse(404, "RevisionNotFound");
    const bytes = repo.files[file];
    if (!bytes) return errorResponse(404, "EntryNotFound", { "X-Repo-Commit": repo.commit });
    if (isLfs(file)) {
      const sha = sha256(bytes);
      return new Response(null, {
        status: 302,
        headers: {
          Location: `http://127.0.0.1:${this.#cdn.addr.port}/blobs/${sha}`,
          "X-Linked-Etag": `"${sha}"`,
          "X-Linked-Size": String(bytes.length),
          "X-Repo-Commit": repo.commit,
          ETag: `"${gitSha1(text(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}`))}"`,
        },
      });
    }
    return serveBytes(req, bytes, { ETag: `"${gitSha1(bytes)}"`, "X-Repo-Commit": repo.commit });
  }

  #serveCdn(req: Request): Response {
    this.#record("cdn", req);
    const sha = new URL(req.url).pathname.replace("/blobs/", "");
    const bytes = Object.values(this.#repos).flatMap((r) => Object.values(r.files)).find((b) => sha256(b) === sha);
    if (!bytes) return new Response(null, { status: 404 });
    const cut = req.method === "GET" ? this.interruptOnce.get(sha) : undefined;
    this.interruptOnce.delete(sha);
    return serveBytes(req, bytes, { ETag: `"${sha}"` }, cut);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([this.#hub.shutdown(), this.#cdn.shutdown()]);
  }
}

const HF_VARS = [
  "HF_ENDPOINT",
  "HF_HOME",
  "HF_HUB_CACHE",
  "HUGGINGFACE_HUB_CACHE",
  "HF_TOKEN",
  "HUGGING_FACE_HUB_TOKEN",
  "HF_TOKEN_PATH",
  "HF_HUB_OFFLINE",
  "TRANSFORMERS_OFFLINE",
];

/** A fresh HF_HOME in a temp dir and HF_ENDPOINT pointing at `endpoint`; both undone on dispose. */
class TestEnv implements AsyncDisposable {
  readonly #saved = new Map(HF_VARS.map((k) => [k, Deno.env.get(k)]));
  readonly home: string;

  constructor(home: string, endpoint: string, extra: Record<string, string>) {
    this.home = home;
    for (const k of HF_VARS) Deno.env.delete(k);
    Deno.env.set("HF_HOME", home);
    Deno.env.set("HF_ENDPOINT", endpoint);
    for (const [k, v] of Object.entries(extra)) Deno.env.set(k, v);
  }

  static async create(endpoint: string, extra: Record<string, string> = {}): Promise<TestEnv> {
    return new TestEnv(await Deno.makeTempDir({ prefix: "lorac-hub-" }), endpoint, extra);
  }

  get cacheDir(): string {
    return join(this.home, "hub");
  }

  repoDir(repoId: string): string {
    return join(this.cacheDir, `models--${repoId.replace("/", "--")}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const [k, v] of this.#saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    await Deno.remove(this.home, { recursive: true });
  }
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, 255);
  return out;
}

function commitOf(rng: Rng): string {
  return Array.from({ length: 40 }, () => rng.int(0, 15).toString(16)).join("");
}

/** A small Llama-like repo; `weights` picks single-file or sharded safetensors. */
function modelRepo(rng: Rng, weights: "single" | "sharded", extra: Partial<Repo> = {}): Repo {
  const files: Record<string, Uint8Array> = {
    "config.json": text(JSON.stringify({ model_type: "llama", hidden_size: 64 })),
    "tokenizer.json": text(JSON.stringify({ model: { type: "BPE" }, seed: rng.seed })),
    "tokenizer_config.json": text(JSON.stringify({ bos_token: "<s>" })),
  };
  if (weights === "single") {
    files["model.safetensors"] = randomBytes(rng, 200_003);
  } else {
    const shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    files[shards[0]] = randomBytes(rng, 90_001);
    files[shards[1]] = randomBytes(rng, 70_007);
    files["model.safetensors.index.json"] = text(
      JSON.stringify({
        metadata: {},
        weight_map: { "a.weight": shards[0], "b.weight": shards[1], "c.weight": shards[0] },
      }),
    );
  }
  return { commit: commitOf(rng), files, ...extra };
}

const quiet = { progress: false as const, log: () => {} };

async function assertBlobLayout(env: TestEnv, repoId: string, repo: Repo, names: string[]): Promise<void> {
  const root = env.repoDir(repoId);
  assert.equal(
    await Deno.readTextFile(join(root, "refs", "main")),
    repo.commit,
    "refs/main holds the commit, no newline",
  );
  for (const name of names) {
    const bytes = repo.files[name];
    const etag = isLfs(name) ? sha256(bytes) : gitSha1(bytes);
    const link = join(root, "snapshots", repo.commit, name);
    assert.equal(await Deno.readLink(link), `../../blobs/${etag}`, name);
    assert.deepEqual(await Deno.readFile(link), bytes, name);
  }
  for await (const entry of Deno.readDir(join(root, "blobs"))) {
    assert.ok(!entry.name.endsWith(".incomplete"), `leftover ${entry.name}`);
  }
}

Deno.test("hub: a model lands in the standard cache layout, and a second resolve makes no request", async (t) => {
  const rng = new Rng();
  const repos = { "org/single": modelRepo(rng, "single"), "org/sharded": modelRepo(rng, "sharded") };
  for (const [repoId, repo] of Object.entries(repos)) {
    await t.step(repoId, async () => {
      await using hub = new FakeHub(repos);
      await using env = await TestEnv.create(hub.endpoint);
      const dir = await downloadModel(repoId, quiet);
      assert.equal(dir, join(env.repoDir(repoId), "snapshots", repo.commit), `seed ${rng.seed}`);
      await assertBlobLayout(env, repoId, repo, Object.keys(repo.files));
      // Optional files the repo lacks are remembered, as huggingface_hub does, so they cost no request later.
      for (const absent of ["generation_config.json", "special_tokens_map.json"]) {
        await Deno.stat(join(env.repoDir(repoId), ".no_exist", repo.commit, absent));
      }
      const before = hub.hits.length;
      assert.equal(await downloadModel(repoId, quiet), dir);
      assert.equal(await resolveModel(repoId, quiet), dir);
      assert.deepEqual(hub.hits.slice(before), [], "the second resolve must not touch the network");
    });
  }
});

Deno.test("hub: a cache laid out by another tool is reused without network", async () => {
  const rng = new Rng();
  const repo = modelRepo(rng, "sharded");
  repo.files["generation_config.json"] = text("{}");
  repo.files["special_tokens_map.json"] = text("{}");
  await using hub = new FakeHub({});
  await using env = await TestEnv.create(hub.endpoint);
  // The layout huggingface_hub writes: blobs by etag, relative symlinks, refs/main without a newline.
  const root = env.repoDir("other/tool");
  await Deno.mkdir(join(root, "blobs"), { recursive: true });
  await Deno.mkdir(join(root, "refs"), { recursive: true });
  await Deno.mkdir(join(root, "snapshots", repo.commit), { recursive: true });
  await Deno.writeTextFile(join(root, "refs", "main"), repo.commit);
  for (const [name, bytes] of Object.entries(repo.files)) {
    const etag = isLfs(name) ? sha256(bytes) : gitSha1(bytes);
    await Deno.writeFile(join(root, "blobs", etag), bytes);
    await Deno.symlink(`../../blobs/${etag}`, join(root, "snapshots", repo.commit, name));
  }
  const dir = await resolveModel("other/tool", quiet);
  assert.equal(dir, join(root, "snapshots", repo.commit));
  const file = await hubDownload("other/tool", "config.json", { ...quiet, revision: repo.commit });
  assert.deepEqual(await Deno.readFile(file.path), repo.files["config.json"]);
  assert.deepEqual(hub.hits, [], `seed ${rng.seed}`);
});

Deno.test("hub: a dropped or stalled connection is resumed with a Range request and the bytes are right", async (t) => {
  const rng = new Rng();
  const repo = modelRepo(rng, "single");
  const weights = repo.files["model.safetensors"];
  const half = (weights.length >> 1).toString();
  for (const cut of ["drop", "stall"] as const) {
    await t.step(cut, async () => {
      await using hub = new FakeHub({ "org/cut": repo });
      // A stall is given up after HF_HUB_DOWNLOAD_TIMEOUT seconds without a byte.
      await using env = await TestEnv.create(hub.endpoint, { HF_HUB_DOWNLOAD_TIMEOUT: "0.2" });
      hub.interruptOnce.set(sha256(weights), cut);
      const lines: string[] = [];
      const sink: ProgressSink = {
        isTerminal: () => false,
        writeSync: (p) => (lines.push(new TextDecoder().decode(p)), p.length),
      };
      await downloadModel("org/cut", { progress: sink, log: () => {} });
      const gets = hub.hitsOf("cdn").filter((h) => h.method === "GET");
      assert.deepEqual(gets.map((h) => h.range), [null, `bytes=${half}-`], `seed ${rng.seed}`);
      assert.ok(gets.every((h) => h.auth === null), "no token goes to the CDN");
      await assertBlobLayout(env, "org/cut", repo, ["model.safetensors"]);
      // Not a terminal: one summary line per downloaded file, nothing else.
      assert.ok(lines.some((l) => /^model\.safetensors: 200\.0 kB in \d+s \(.+\/s\)\n$/.test(l)), lines.join(""));
    });
  }
});

Deno.test("hub: a partial file left by an earlier run resumes from its end; a wrong one is discarded", async (t) => {
  const rng = new Rng();
  const repo = modelRepo(rng, "single");
  const weights = repo.files["model.safetensors"];
  const sha = sha256(weights);
  const cut = rng.int(1, weights.length - 1);
  const corrupt = weights.slice(0, cut);
  corrupt[0] ^= 0xff;
  const cases = [
    { name: "a true prefix resumes", prefix: weights.slice(0, cut), wrong: false, ranges: [`bytes=${cut}-`] },
    {
      name: "a wrong prefix fails the sha256 and is discarded",
      prefix: corrupt,
      wrong: true,
      ranges: [`bytes=${cut}-`, null],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using hub = new FakeHub({ "org/partial": repo });
      await using env = await TestEnv.create(hub.endpoint);
      const blobs = join(env.repoDir("org/partial"), "blobs");
      await Deno.mkdir(blobs, { recursive: true });
      await Deno.writeFile(join(blobs, `${sha}.incomplete`), c.prefix);
      if (c.wrong) {
        await assert.rejects(
          downloadModel("org/partial", quiet),
          (e: unknown) =>
            e instanceof HubError && e.code === "integrity" && /has sha256 [0-9a-f]{64}, the Hub/.test(e.message),
        );
        assert.equal((await Deno.stat(join(blobs, `${sha}.incomplete`))).size, 0, "a wrong prefix must not be kept");
      }
      await downloadModel("org/partial", quiet);
      const ranges = hub.hitsOf("cdn").filter((h) => h.method === "GET").map((h) => h.range);
      assert.deepEqual(ranges, c.ranges, `seed ${rng.seed}, cut ${cut}`);
      await assertBlobLayout(env, "org/partial", repo, ["model.safetensors"]);
    });
  }
});

Deno.test("hub: the gated repo needs HF_TOKEN, which reaches the Hub but never the CDN", async () => {
  const rng = new Rng();
  const repo = modelRepo(rng, "single", { token: "hf_right" });
  await using hub = new FakeHub({ "org/gated": repo });
  await using env = await TestEnv.create(hub.endpoint, { HF_TOKEN: "hf_right" });
  await downloadModel("org/gated", quiet);
  assert.ok(hub.hitsOf("hub").every((h) => h.auth === "Bearer hf_right"));
  assert.ok(hub.hitsOf("cdn").length > 0 && hub.hitsOf("cdn").every((h) => h.auth === null));
  await assertBlobLayout(env, "org/gated", repo, Object.keys(repo.files));
});

Deno.test("hub: each failure is one clear line", async (t) => {
  const rng = new Rng();
  const noTokenizer = modelRepo(rng, "single");
  delete noTokenizer.files["tokenizer.json"];
  const noWeights = modelRepo(rng, "single");
  delete noWeights.files["model.safetensors"];
  const repos = {
    "org/gated": modelRepo(rng, "single", { token: "hf_right" }),
    "org/no-tokenizer": noTokenizer,
    "org/no-weights": noWeights,
    "org/ok": modelRepo(rng, "single"),
  };
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadEndpoint = `http://127.0.0.1:${closed.addr.port}`;
  closed.close(); // nothing listens there any more
  const cases: { name: string; id: string; env?: Record<string, string>; code: HubErrorCode; message: RegExp }[] = [
    {
      name: "gated, no token (401)",
      id: "org/gated",
      code: "auth",
      message:
        /^org\/gated is gated or private \(HTTP 401\): accept its license at http:\/\/127\.0\.0\.1:\d+\/org\/gated and set HF_TOKEN/,
    },
    {
      name: "gated, wrong token (403)",
      id: "org/gated",
      env: { HF_TOKEN: "hf_wrong" },
      code: "auth",
      message:
        /^HF_TOKEN has no access to org\/gated \(HTTP 403\): accept its license at http:\/\/127\.0\.0\.1:\d+\/org\/gated/,
    },
    {
      name: "missing repo",
      id: "org/nope",
      code: "repo-not-found",
      message:
        /^repository org\/nope not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 401\): check the id.*no local folder/,
    },
    {
      name: "missing file (404)",
      id: "org/no-tokenizer",
      code: "file-not-found",
      message: /^tokenizer\.json not found in org\/no-tokenizer at revision [0-9a-f]{40}/,
    },
    {
      name: "no safetensors weights",
      id: "org/no-weights",
      code: "file-not-found",
      message: /^org\/no-weights has neither model\.safetensors nor model\.safetensors\.index\.json/,
    },
    {
      name: "offline with nothing cached",
      id: "org/ok",
      env: { HF_HUB_OFFLINE: "1" },
      code: "offline",
      message: /^HF_HUB_OFFLINE is set and org\/ok \(revision main\) is not fully in the cache at .*models--org--ok/,
    },
    {
      name: "Hub unreachable with nothing cached",
      id: "org/ok",
      env: { HF_ENDPOINT: deadEndpoint },
      code: "network",
      message: /^cannot reach http:\/\/127\.0\.0\.1:\d+: .*, and org\/ok \(revision main\) is not in the cache at /,
    },
    {
      name: "cache on a path that cannot be a folder",
      id: "org/ok",
      env: { HF_HUB_CACHE: "/dev/null/hub" },
      code: "io",
      message: /^cannot .*\/dev\/null\/hub.*: check free space and write permission under \/dev\/null\/hub/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await using hub = new FakeHub(repos);
      await using _env = await TestEnv.create(hub.endpoint, c.env);
      await assert.rejects(resolveModel(c.id, quiet), (e: unknown) => {
        assert.ok(e instanceof HubError, String(e));
        assert.equal(e.code, c.code, e.message);
        assert.match(e.message, c.message);
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});

Deno.test("hub: when the Hub cannot be reached, a cached snapshot is used with a notice", async () => {
  const rng = new Rng();
  const repo = modelRepo(rng, "single");
  const hub = new FakeHub({ "org/cached": repo });
  await using _env = await TestEnv.create(hub.endpoint);
  let dir: string;
  try {
    dir = await downloadModel("org/cached", quiet);
  } finally {
    await hub[Symbol.asyncDispose]();
  }
  // The server is gone now; `refresh` makes the resolve ask the network anyway.
  const notes: string[] = [];
  assert.equal(await downloadModel("org/cached", { progress: false, log: (l) => notes.push(l), refresh: true }), dir);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /^cannot reach http:\/\/127\.0\.0\.1:\d+: .*: using the cached org\/cached \([0-9a-f]{8}\)$/);
  // HF_HUB_OFFLINE reads the cache without trying.
  Deno.env.set("HF_HUB_OFFLINE", "1");
  assert.equal(await downloadModel("org/cached", { ...quiet, refresh: true }), dir);
});

Deno.test("hub: resolveModel returns folders and .gguf files as they are and refuses the rest", async (t) => {
  await using hub = new FakeHub({});
  await using env = await TestEnv.create(hub.endpoint);
  const folder = join(env.home, "my-model");
  const gguf = join(env.home, "tiny.Q4_1.gguf");
  const other = join(env.home, "notes.txt");
  await Deno.mkdir(folder);
  await Deno.writeFile(gguf, new Uint8Array([0x47, 0x47, 0x55, 0x46]));
  await Deno.writeTextFile(other, "x");
  const cases: { input: string; result?: string; error?: RegExp }[] = [
    { input: folder, result: folder },
    { input: gguf, result: gguf },
    { input: other, error: /notes\.txt is a file but not a \.gguf: pass a model folder/ },
    { input: join(env.home, "gone.gguf"), error: /GGUF file .*gone\.gguf not found$/ },
    { input: "not a/valid id/x", error: /is not a folder, a file or a Hub id/ },
  ];
  for (const c of cases) {
    await t.step(c.input, async () => {
      if (c.result) assert.equal(await resolveModel(c.input, quiet), c.result);
      else await assert.rejects(resolveModel(c.input, quiet), c.error!);
    });
  }
  assert.deepEqual(hub.hits, []);
});
