// Interrupted training: `lorac train` is SIGKILLed at random steps and in the middle of checkpoint saves,
// resumed with --resume_from_checkpoint each time, and must end with the bytes of a run that never stopped;
// a damaged latest checkpoint is passed over (with a warning) when resuming from the latest, and is a one-line
// error when named.
import assert from "node:assert/strict";
import { checkpointDirs, cleanInterruptedWrites, loadCheckpoint } from "../lib/train/checkpoint.ts";
import { MetricsLog } from "../lib/train/metrics_log.ts";
import { maskedCrc32c } from "../lib/train/tensorboard.ts";
import { Rng } from "./reference/random.ts";
import { writeStoriesTokenizerJson } from "./reference/stories_tokenizer.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const STORIES = new URL("../../shared/models/stories260K/", import.meta.url).pathname;

// A keyword decides the class.
const KEYWORDS: Record<string, string> = { sun: "happy", tree: "big", dog: "friend" };
const FILLER = "the girl ran to play with ball park little boy saw bird in garden".split(" ");

function csv(rng: Rng, n: number): string {
  const rows = Array.from({ length: n }, (_, i) => {
    const keyword = Object.keys(KEYWORDS)[i % 3];
    const words = Array.from({ length: rng.int(3, 8) }, () => FILLER[rng.int(0, FILLER.length - 1)]);
    words.splice(rng.int(0, words.length), 0, keyword);
    return `${words.join(" ")},${KEYWORDS[keyword]}`;
  });
  return ["text,label", ...rows].join("\n") + "\n";
}

/** The flags of every run: a checkpoint every step, evaluations (and best/) every 3, dropout, accumulation, TensorBoard. */
const flags = (dir: string, out: string) => [
  "train",
  ...["--base_path", dir, "--text_fields", "text", "--label_column", "label", "--template", `${dir}/template.txt`],
  ...["--base_model_name", `${STORIES}/hf`, "--tokenizer", `${dir}/tokenizer.json`, "--output_dir", out],
  ...["--save_steps", "1", "--eval_steps", "3", "--decode", "score", "--report_to", "tensorboard"],
  ...[
    "--batch_tokens",
    "96",
    "--max_seq_length",
    "48",
    "--gradient_accumulation_steps",
    "2",
    "--num_train_epochs",
    "2",
  ],
  // Rank 16: a checkpoint of ~1 MB, so a save lasts long enough (a few fsyncs of real data) to be killed midway.
  ...[
    "--lora_r",
    "16",
    "--lora_alpha",
    "32",
    "--lora_dropout",
    "0.1",
    "--learning_rate",
    "1e-2",
    "--warmup_steps",
    "2",
  ],
  // One thread: with other test files beside it on two cores, more threads mostly wait on each other.
  ...["--lr_scheduler_type", "cosine", "--seed", "7", "--num_threads", "1"],
];

/** What ends an attempt: SIGKILL once the progress shows step `step`, or once a checkpoint save has begun. */
type Kill = { at: "step"; step: number } | { at: "save" };

/**
 * Runs `lorac train` until it exits or `kill` fires; returns whether it was killed, its exit code and stderr.
 * A save is seen through the file system: the hidden temporary folder a save writes into.
 */
async function attempt(args: string[], out: string, kill: Kill | null) {
  await Deno.mkdir(out, { recursive: true });
  const watcher = kill?.at === "save" ? Deno.watchFs(out, { recursive: false }) : null;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const fire = () => {
    if (killed) return;
    killed = true;
    child.kill("SIGKILL");
  };
  const watching = (async () => {
    if (!watcher) return;
    for await (const event of watcher) {
      if (event.paths.some((p) => /\/\.checkpoint-\d+\.tmp-/.test(p))) fire();
    }
  })();
  let stderr = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    if (kill?.at !== "step") continue;
    const steps = [...stderr.matchAll(/^step (\d+)\/\d+ /gm)].map((m) => Number(m[1]));
    if (steps.some((s) => s >= kill.step)) fire();
  }
  const { code } = await child.status;
  watcher?.close();
  await watching;
  return { killed, code, stderr };
}

/** Entries that interrupted atomic writes leave: `.<name>.tmp-*` and `.<name>.old-*`. */
const leftovers = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) => /^\..+\.(tmp|old)-/.test(n));

const bytes = (path: string) => Deno.readFile(path);

/** metrics.jsonl without what depends on the clock. */
async function metrics(out: string) {
  const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n");
  return lines.map((l) => {
    const { time: _t, tokens_per_s: _r, mfu: _m, ...rest } = JSON.parse(l);
    return rest;
  });
}

/** The (tag, step, value) scalars of every TensorBoard event file of the run folder written last, CRCs checked. */
async function tensorboardScalars(out: string): Promise<string[]> {
  const runs = await Array.fromAsync(Deno.readDir(`${out}/runs`));
  assert.equal(runs.length, 1, `one TensorBoard run folder: ${runs.map((r) => r.name)}`);
  const dir = `${out}/runs/${runs[0].name}`;
  const scalars: string[] = [];
  for (const file of (await Array.fromAsync(Deno.readDir(dir))).map((f) => f.name).sort()) {
    const data = await bytes(`${dir}/${file}`);
    const view = new DataView(data.buffer);
    for (let at = 0; at < data.length;) {
      const n = Number(view.getBigUint64(at, true));
      const event = data.subarray(at + 12, at + 12 + n);
      assert.equal(view.getUint32(at + 12 + n, true), maskedCrc32c(event), `${file}: CRC at ${at}`);
      scalars.push(...eventScalars(event));
      at += 16 + n;
    }
  }
  return scalars;
}

/** Protobuf fields of `data` as [field, value or bytes]; enough for Event { step = 2, summary = 5 } and Summary.Value. */
function fields(data: Uint8Array): [number, number | Uint8Array][] {
  const out: [number, number | Uint8Array][] = [];
  let at = 0;
  const varint = () => {
    let v = 0, scale = 1;
    for (;;) {
      const b = data[at++];
      v += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return v;
    }
  };
  while (at < data.length) {
    const key = varint(), wire = key & 7, field = key >> 3;
    if (wire === 0) out.push([field, varint()]);
    else if (wire === 2) {
      const len = varint();
      out.push([field, data.subarray(at, at + len)]);
      at += len;
    } else {
      const len = wire === 1 ? 8 : 4;
      const view = new DataView(data.buffer, data.byteOffset + at, len);
      out.push([field, len === 8 ? view.getFloat64(0, true) : view.getFloat32(0, true)]);
      at += len;
    }
  }
  return out;
}

function eventScalars(event: Uint8Array): string[] {
  const f = fields(event);
  const step = (f.find(([k]) => k === 2)?.[1] as number | undefined) ?? 0;
  const summary = f.find(([k]) => k === 5)?.[1] as Uint8Array | undefined;
  if (!summary) return [];
  return fields(summary).filter(([k]) => k === 1).map(([, v]) => {
    const value = fields(v as Uint8Array);
    const tag = new TextDecoder().decode(value.find(([k]) => k === 1)![1] as Uint8Array);
    return `${tag}@${step}=${value.find(([k]) => k === 2)![1]}`;
  });
}

Deno.test("train kill: SIGKILLed at random steps and mid-save, resumed each time, it ends with the same bytes", async () => {
  const rng = new Rng();
  const seed = `(seed ${rng.seed})`;
  const dir = await Deno.makeTempDir({ prefix: "lorac-kill-" });
  await writeStoriesTokenizerJson(`${dir}/tokenizer.json`, { specialIds: true });
  await Deno.writeTextFile(`${dir}/train.csv`, csv(rng, 48));
  await Deno.writeTextFile(`${dir}/validation.csv`, csv(rng, 6));
  await Deno.writeTextFile(`${dir}/template.txt`, "text: {text}\nlabel:\n");

  const ref = `${dir}/ref`, out = `${dir}/killed`;
  const straight = await attempt(flags(dir, ref), ref, null);
  assert.equal(straight.code, 0, `${straight.stderr} ${seed}`);
  const total = (await checkpointDirs(ref)).length;
  assert.ok(total >= 8, `${total} steps ${seed}`);

  // Kill at random steps, and in the middle of a save until one kill has landed there (a hidden temporary
  // checkpoint folder is left). The first kill comes after step 3, so that every attempt after it resumes
  // and two checkpoints at least are there.
  let kills = 0, midSave = 0;
  for (let i = 0; i < 14 && (kills < 4 || midSave < 1); i++) {
    // A kill once step k shows lands before checkpoint-k is saved: aim at least two steps past the latest.
    const done = Number((await checkpointDirs(out))[0]?.match(/(\d+)$/)?.[1] ?? 0);
    const kill: Kill = i === 0
      ? { at: "step", step: rng.int(3, total >> 1) }
      : midSave === 0 && rng.next() < 0.75
      ? { at: "save" }
      : { at: "step", step: rng.int(Math.min(done + 2, total), total) };
    const r = await attempt([...flags(dir, out), ...(i > 0 ? ["--resume_from_checkpoint"] : [])], out, kill);
    if (!r.killed) {
      assert.equal(r.code, 0, `attempt ${i} (${JSON.stringify(kill)}): ${r.stderr} ${seed}`);
      // It finished before the kill: start the interrupted run again from a checkpoint in the middle.
      for (const d of (await checkpointDirs(out)).slice(0, rng.int(1, total - 2))) {
        await Deno.remove(d, { recursive: true });
      }
      continue;
    }
    kills++;
    const left = await leftovers(out);
    if (left.some((n) => n.startsWith(".checkpoint-"))) midSave++;
    // Whatever the kill interrupted, the latest checkpoint is whole and the one the straight run saved.
    const latest = (await checkpointDirs(out))[0];
    if (latest) {
      await loadCheckpoint(latest);
      const name = latest.slice(out.length);
      for (const f of ["adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"]) {
        assert.deepEqual(await bytes(`${latest}/${f}`), await bytes(`${ref}${name}/${f}`), `${name}/${f} ${seed}`);
      }
    }
    console.log(`kill ${kills}: ${JSON.stringify(kill)}, latest ${latest?.slice(out.length + 1)}, left ${left}`);
  }
  console.log(`survived ${kills} kills, ${midSave} of them mid-save ${seed}`);
  assert.ok(kills >= 4 && midSave >= 1, `${kills} kills, ${midSave} mid-save ${seed}`);

  // The latest checkpoint damaged (a truncated adapter): named, it is a one-line error that names it ...
  const [latest, previous] = await checkpointDirs(out);
  assert.ok(previous, `two checkpoints at least ${seed}`);
  const weights = `${latest}/adapter_model.safetensors`;
  await Deno.truncate(weights, (await Deno.stat(weights)).size >> 1);
  const named = await attempt([...flags(dir, out), "--resume_from_checkpoint", latest], out, null);
  assert.equal(named.code, 1, seed);
  // (A slow model load may print a progress line first.)
  assert.match(
    named.stderr,
    new RegExp(
      `(^|\n)lorac: checkpoint ${latest} cannot be read: [^\n]*adapter_model\\.safetensors[^\n]*; resume from an earlier [^\n]*\n$`,
    ),
  );
  // ... and resuming from the latest passes over it with a warning, uses the one before and writes it again.
  const last = await attempt([...flags(dir, out), "--resume_from_checkpoint"], out, null);
  assert.equal(last.code, 0, `${last.stderr} ${seed}`);
  assert.match(last.stderr, new RegExp(`checkpoint ${latest} cannot be read: .*; resuming from an earlier checkpoint`));

  // The same bytes as the run that never stopped: adapters, best adapters, the last checkpoint; the same logs.
  for (const f of ["adapter_model.safetensors", "adapter_config.json", "best/adapter_model.safetensors"]) {
    assert.deepEqual(await bytes(`${out}/${f}`), await bytes(`${ref}/${f}`), `${f} ${seed}`);
  }
  const end = `checkpoint-${total}`;
  for (const f of ["optimizer.safetensors", "trainer_state.json", "adapter_model.safetensors"]) {
    assert.deepEqual(await bytes(`${out}/${end}/${f}`), await bytes(`${ref}/${end}/${f}`), `${end}/${f} ${seed}`);
  }
  const damaged = `${ref}${latest.slice(out.length)}/adapter_model.safetensors`;
  assert.deepEqual(await bytes(weights), await bytes(damaged), `the damaged checkpoint was written again ${seed}`);
  assert.deepEqual(await metrics(out), await metrics(ref), `metrics.jsonl ${seed}`);
  const scalars = (await tensorboardScalars(out)).filter((s) => !s.startsWith("train/tokens_per_s"));
  assert.deepEqual(scalars, (await tensorboardScalars(ref)).filter((s) => !s.startsWith("train/tokens_per_s")), seed);
  assert.deepEqual(await leftovers(out), [], `no leftovers of killed writes ${seed}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train kill: leftovers of killed writes are removed, and a folder moved aside comes back", async () => {
  const dir = await Deno.makeTempDir();
  const table: [string, "dir" | "file", string | null][] = [
    // [entry, kind, what is there afterwards under its name or its target's]
    [".checkpoint-9.tmp-123-0a1b2c3d", "dir", null], // a save killed while writing
    [".best.old-123-0a1b2c3d", "dir", "best"], // moved aside, and the new one never arrived: restored
    ["checkpoint-4", "dir", "checkpoint-4"],
    [".checkpoint-4.old-77-ffffffff", "dir", null], // the new checkpoint-4 is in place: the old one goes
    [".metrics.jsonl.tmp-5-12345678", "file", null],
    [".hidden", "file", ".hidden"], // not ours
    ["notes.tmp-1-2", "file", "notes.tmp-1-2"],
  ];
  for (const [name, kind] of table) {
    if (kind === "dir") await Deno.mkdir(`${dir}/${name}`);
    else await Deno.writeTextFile(`${dir}/${name}`, name);
  }
  const tidied = await cleanInterruptedWrites(dir);
  assert.deepEqual(tidied, table.filter(([n]) => /\.(tmp|old)-\d+-[0-9a-f]{8}$/.test(n)).map(([n]) => n).sort());
  const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  assert.deepEqual(left, table.flatMap(([, , after]) => after ?? []).sort());
  assert.deepEqual(await cleanInterruptedWrites(`${dir}/none`), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train kill: a resumed log keeps the records up to its step, drops a torn line, rebuilds TensorBoard", async () => {
  const dir = await Deno.makeTempDir();
  const record = (step: number) => ({
    step,
    epoch: step / 5,
    loss: 3 - step / 10,
    learningRate: 1e-3,
    gradNorm: 1,
    tokens: 100,
    tokensPerSecond: 1000,
    mfu: null,
  });
  {
    using log = await MetricsLog.open(dir, { tensorboard: true, now: () => 1.7e9 });
    for (let step = 1; step <= 5; step++) {
      log.train(record(step));
      if (step === 3) log.eval({ step, epoch: 0.6, loss: 2.5, accuracy: 0.5 });
    }
  }
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"type":"train","step":6,"lo', { append: true }); // torn by a kill
  const run = (await Array.fromAsync(Deno.readDir(`${dir}/runs`)))[0].name;
  {
    using log = await MetricsLog.open(dir, { tensorboard: true, resumeStep: 3, now: () => 1.7e9 + 5 });
    assert.deepEqual(log.kept.map((r) => [r.type, r.step]), [["train", 1], ["train", 2], ["train", 3], ["eval", 3]]);
    log.train(record(4));
  }
  assert.deepEqual((await metrics(dir)).map((r) => [r.type, r.step]), [
    ["train", 1],
    ["train", 2],
    ["train", 3],
    ["eval", 3],
    ["train", 4],
  ]);
  const scalars = await tensorboardScalars(dir);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(`${dir}/runs`))).map((e) => e.name), [run], "the same run");
  assert.deepEqual(
    scalars.filter((s) => s.startsWith("train/loss@")),
    [1, 2, 3, 4].map((s) => `train/loss@${s}=${Math.fround(3 - s / 10)}`),
  );
  assert.deepEqual(scalars.filter((s) => s.startsWith("eval/")), ["eval/loss@3=2.5", "eval/accuracy@3=0.5"]);
  await Deno.remove(dir, { recursive: true });
});
