/**
 * Attention forward + backward and the fused lm_head + cross-entropy on
 * SmolLM2-135M and Llama-3.2-1B shapes (T = 2048 as 4 sequences of 512;
 * cross-entropy on 64 rows), side by side with torch in one run: each
 * repetition times ours, then torch's, so both see the same load on a shared
 * machine. Medians and ratios (torch time / ours: > 1 means we are faster).
 *
 *   deno run -A bench/attention_bench.ts [--reps 7] [--model smol|llama]
 *   deno bench -A bench/attention_bench.ts          (ours alone, deno bench statistics)
 *
 * torch (bench/torch_ops.py) runs in $LORAC_ORACLE_PYTHON, else
 * .oracle-venv/bin/python (made by tests/oracle/setup.sh); without either the
 * torch columns are skipped. Both sides use fp32 and every core.
 *
 * @module
 */

import { attentionBackward, attentionForward, type AttentionHeads } from "../lib/backend/attention.ts";
import { type Backend, openBackend } from "../lib/backend/backend.ts";
import { linearCrossEntropy } from "../lib/backend/cross_entropy.ts";
import { PackedBatch } from "../lib/backend/packed.ts";
import type { Tensor } from "../lib/backend/tensor.ts";
import { Rng } from "../tests/reference/random.ts";
import { torchPython } from "./peak.ts";

/** The shapes of one model that these ops see. */
interface ModelShape {
  name: string;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  hidden: number;
  vocab: number;
}

const MODELS: ModelShape[] = [
  { name: "SmolLM2-135M", nHeads: 9, nKvHeads: 3, headDim: 64, hidden: 576, vocab: 49152 },
  { name: "Llama-3.2-1B", nHeads: 32, nKvHeads: 8, headDim: 64, hidden: 2048, vocab: 128256 },
];
const LENGTHS = [512, 512, 512, 512];
const CE_ROWS = 64;

/** Times of one call, seconds. */
interface FwdBwd {
  fwd: number;
  bwd: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function timed(fwd: () => void, bwd: () => void): FwdBwd {
  const t0 = performance.now();
  fwd();
  const t1 = performance.now();
  bwd();
  const t2 = performance.now();
  return { fwd: (t1 - t0) / 1e3, bwd: (t2 - t1) / 1e3 };
}

/** Our attention on a model's shape: inputs made once, one call per run(). */
class OurAttention implements Disposable {
  readonly #backend: Backend;
  readonly #batch: PackedBatch;
  readonly #heads: AttentionHeads;
  readonly #tensors: Record<"q" | "k" | "v" | "out" | "dout" | "dq" | "dk" | "dv" | "lse", Tensor<"f32">>;

  constructor(backend: Backend, model: ModelShape) {
    const rng = new Rng(1);
    this.#backend = backend;
    this.#batch = PackedBatch.fromLengths(backend, LENGTHS);
    this.#heads = { nHeads: model.nHeads, nKvHeads: model.nKvHeads, headDim: model.headDim };
    const T = this.#batch.T, q = T * model.nHeads * model.headDim, kv = T * model.nKvHeads * model.headDim;
    const random = (n: number) => backend.fromHost(rng.normals(n), [n], "f32");
    this.#tensors = {
      q: random(q),
      k: random(kv),
      v: random(kv),
      dout: random(q),
      out: backend.empty([q], "f32"),
      dq: backend.empty([q], "f32"),
      dk: backend.empty([kv], "f32"),
      dv: backend.empty([kv], "f32"),
      lse: backend.empty([model.nHeads * T], "f32"),
    };
  }

  forward(): void {
    const { q, k, v, out, lse } = this.#tensors;
    attentionForward(this.#backend, this.#batch, this.#heads, q, k, v, out, lse);
  }

  backward(): void {
    const { q, k, v, out, lse, dout, dq, dk, dv } = this.#tensors;
    attentionBackward(this.#backend, this.#batch, this.#heads, q, k, v, out, lse, { dout, dq, dk, dv });
  }

  run(): FwdBwd {
    return timed(() => this.forward(), () => this.backward());
  }

  [Symbol.dispose](): void {
    this.#batch[Symbol.dispose]();
    for (const t of Object.values(this.#tensors)) t.free();
  }
}

/** Our fused lm_head + cross-entropy with W in `wDtype`: the forward alone, then forward + dH. */
class OurCrossEntropy implements Disposable {
  readonly #backend: Backend;
  readonly #tensors: Tensor[];
  readonly #call: (withGrad: boolean) => void;

  constructor(backend: Backend, model: ModelShape, wDtype: "f32" | "bf16") {
    const rng = new Rng(2);
    const T = LENGTHS.reduce((a, b) => a + b, 0), D = model.hidden, V = model.vocab;
    this.#backend = backend;
    const h = backend.fromHost(rng.normals(T * D), [T, D], "f32");
    const w32 = backend.fromHost(rng.normals(V * D, 0.02), [V, D], "f32");
    const w = wDtype === "f32" ? w32 : backend.convert(w32, "bf16");
    if (w !== w32) w32.free();
    // The loss rows: spread over the batch, as the completion tokens of 4 sequences.
    const rows = backend.fromHost(Int32Array.from({ length: CE_ROWS }, (_, i) => Math.floor(i * T / CE_ROWS)), [
      CE_ROWS,
    ], "i32");
    const targets = backend.fromHost(Int32Array.from({ length: CE_ROWS }, () => rng.int(0, V - 1)), [CE_ROWS], "i32");
    const lossSum = backend.empty([1], "f32");
    const dH = backend.filled([T, D], "f32");
    this.#tensors = [h, w, rows, targets, lossSum, dH];
    this.#call = (withGrad) =>
      linearCrossEntropy(backend, h, w, rows, targets, withGrad ? { lossSum, dH, gradScale: 1 } : { lossSum });
  }

  /** fwd: the loss alone; bwd: what the gradient adds (loss + dH minus loss alone). */
  run(): FwdBwd {
    const t0 = performance.now();
    this.#call(false);
    const t1 = performance.now();
    this.#call(true);
    const t2 = performance.now();
    const fwd = (t1 - t0) / 1e3;
    return { fwd, bwd: Math.max(0, (t2 - t1) / 1e3 - fwd) };
  }

  [Symbol.dispose](): void {
    for (const t of this.#tensors) t.free();
    void this.#backend;
  }
}

/** torch in a child process, one request at a time (bench/torch_ops.py). */
class TorchOps implements AsyncDisposable {
  #version = "";
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(new LineStream())[
      Symbol.asyncIterator
    ]();
  }

  /** Starts torch_ops.py in `python` with `threads` intra-op threads. */
  static async start(python: string, threads: number): Promise<TorchOps> {
    const script = new URL("torch_ops.py", import.meta.url).pathname;
    const ops = new TorchOps(new Deno.Command(python, { args: [script], stdin: "piped", stdout: "piped" }).spawn());
    ops.#version = String((await ops.request({ op: "setup", threads })).torch);
    return ops;
  }

  /** torch's version string. */
  get version(): string {
    return this.#version;
  }

  /** Sends one request and waits for its reply. */
  async request(req: Record<string, unknown>): Promise<Record<string, number | string>> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const { value, done } = await this.#lines.next();
    if (done) throw new Error(`torch_ops.py exited while answering ${JSON.stringify(req)}`);
    const reply = JSON.parse(value);
    if (reply.error) throw new Error(`torch_ops.py: ${reply.error}`);
    return reply;
  }

  /** Closes its stdin and waits for it to exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close();
    await this.#child.status;
  }
}

/** Splits a text stream into lines. */
class LineStream extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const p of parts) controller.enqueue(p);
      },
      flush(controller) {
        if (rest) controller.enqueue(rest);
      },
    });
  }
}

function parseArgs(args: string[]): { reps: number; models: ModelShape[] } {
  const at = args.indexOf("--reps");
  const reps = at >= 0 ? Number(args[at + 1]) : 7;
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps needs a positive integer, got ${args[at + 1]}`);
  const m = args.indexOf("--model");
  const pick = m >= 0 ? args[m + 1] : null;
  const models = MODELS.filter((x) => !pick || x.name.toLowerCase().startsWith(pick.toLowerCase()));
  if (models.length === 0) throw new RangeError(`--model ${pick}: choose smol or llama`);
  return { reps, models };
}

const ms = (s: number | undefined) => s === undefined ? "-" : (s * 1e3).toFixed(1);

/** Per-repetition samples of one row of the report. */
type Samples = Map<string, FwdBwd[]>;

function add(samples: Samples, key: string, t: FwdBwd): void {
  samples.set(key, [...(samples.get(key) ?? []), t]);
}

function summary(samples: Samples, key: string): { fwd: number; bwd: number; total: number } | undefined {
  const ts = samples.get(key);
  if (!ts) return undefined;
  return {
    fwd: median(ts.map((t) => t.fwd)),
    bwd: median(ts.map((t) => t.bwd)),
    total: median(ts.map((t) => t.fwd + t.bwd)),
  };
}

async function main(): Promise<void> {
  const { reps, models } = parseArgs(Deno.args);
  using backend = await openBackend("cpu");
  const threads = navigator.hardwareConcurrency;
  const python = await torchPython();
  await using torch = python ? await TorchOps.start(python, threads) : null;
  console.log(`device: ${backend.deviceName}`);
  console.log(
    torch ? `torch ${torch.version} (${python}), ${threads} threads` : "torch: no python with torch: skipped",
  );
  console.log(`T = ${LENGTHS.join(" + ")}, cross-entropy on ${CE_ROWS} rows; median of ${reps} after a warm-up\n`);
  const samples: Samples = new Map();
  for (const model of models) {
    const attnReq = { op: "attention", lengths: LENGTHS, ...model };
    using ours = new OurAttention(backend, model);
    ours.run();
    await torch?.request({ ...attnReq, mode: "gqa" });
    await torch?.request({ ...attnReq, mode: "repeat" });
    for (let i = 0; i < reps; i++) {
      add(samples, `${model.name} attention ours`, ours.run());
      if (!torch) continue;
      add(samples, `${model.name} attention torch-gqa`, (await torch.request({ ...attnReq, mode: "gqa" })) as never);
      add(
        samples,
        `${model.name} attention torch-repeat`,
        (await torch.request({ ...attnReq, mode: "repeat" })) as never,
      );
    }
    using ceF32 = new OurCrossEntropy(backend, model, "f32");
    using ceBf16 = new OurCrossEntropy(backend, model, "bf16");
    const ceReq = { op: "cross_entropy", rows: CE_ROWS, D: model.hidden, V: model.vocab };
    ceF32.run();
    ceBf16.run();
    await torch?.request(ceReq);
    for (let i = 0; i < reps; i++) {
      add(samples, `${model.name} linear+CE ours (W f32)`, ceF32.run());
      add(samples, `${model.name} linear+CE ours (W bf16)`, ceBf16.run());
      if (torch) add(samples, `${model.name} linear+CE torch (W f32)`, (await torch.request(ceReq)) as never);
    }
  }
  const widths = [44, 10, 10, 11, 14];
  console.log(
    ["", "fwd ms", "bwd ms", "total ms", "torch/ours"].map((h, i) => i ? h.padStart(widths[i]) : h.padEnd(widths[0]))
      .join(""),
  );
  for (const model of models) {
    for (const op of ["attention", "linear+CE"]) {
      const keys = [...samples.keys()].filter((k) => k.startsWith(`${model.name} ${op} `));
      const oursKey = keys.find((k) => k.includes(" ours"))!;
      const torchTotals = keys.filter((k) => k.includes("torch")).map((k) => summary(samples, k)!.total);
      const bestTorch = torchTotals.length ? Math.min(...torchTotals) : undefined;
      for (const key of keys) {
        const s = summary(samples, key)!;
        const ratio = key.includes(" ours") && bestTorch !== undefined ? `${(bestTorch / s.total).toFixed(2)}x` : "";
        console.log([
          key.padEnd(widths[0]),
          ms(s.fwd).padStart(widths[1]),
          ms(s.bwd).padStart(widths[2]),
          ms(s.total).padStart(widths[3]),
          ratio.padStart(widths[4]),
        ].join(""));
      }
      void oursKey;
    }
  }
  console.log("\ntorch/ours = the faster torch variant's median total / ours (> 1: we are faster).");
  console.log("linear+CE: fwd = the loss alone; bwd = what computing dH adds to it.");
}

if (import.meta.main) {
  await main();
} else {
  // Under `deno bench`: ours alone on each model's shapes.
  const backend = await openBackend("cpu");
  for (const model of MODELS) {
    const attention = new OurAttention(backend, model);
    Deno.bench(`attention forward ${model.name}`, { group: model.name }, () => attention.forward());
    Deno.bench(`attention backward ${model.name}`, { group: model.name }, () => attention.backward());
    const ce = new OurCrossEntropy(backend, model, "bf16");
    Deno.bench(`linear + cross-entropy (W bf16) ${model.name}`, { group: model.name }, () => void ce.run());
  }
}
