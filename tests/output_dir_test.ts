import assert from "node:assert/strict";
import { checkOutputFolder, undoneOnFailure } from "../cli/output_dir.ts";

const tree = async (dir: string): Promise<string[]> => {
  const found: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      found.push(`${rel}${e.name}${e.isDirectory ? "/" : ""}`);
      if (e.isDirectory) await walk(`${rel}${e.name}/`);
    }
  };
  await walk("");
  return found.sort();
};
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** A run that writes `files` (paths under dir; "x/" a folder) and then fails. */
const failingRun = (dir: string, files: string[]) => async () => {
  await Deno.mkdir(dir, { recursive: true });
  for (const f of files) {
    if (f.endsWith("/")) await Deno.mkdir(`${dir}/${f}`, { recursive: true });
    else await Deno.writeTextFile(`${dir}/${f}`, "new");
  }
  throw new Error("No space left on device (os error 28)");
};

Deno.test("undoneOnFailure: a failed run leaves the folder as it found it, unless it saved a checkpoint", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "lorac-output-dir-" });

  await t.step("a folder the run created is removed whole", async () => {
    const dir = `${root}/fresh/out`;
    await assert.rejects(
      undoneOnFailure(dir, failingRun(dir, ["training_args.json", "runs/a/", "runs/a/events"])),
      /^Error: No space left on device/,
    );
    assert.equal(await exists(dir), false);
  });

  await t.step("in a folder that existed, only what is new goes, even inside old folders", async () => {
    const dir = `${root}/old`;
    await Deno.mkdir(`${dir}/runs/first`, { recursive: true });
    await Deno.writeTextFile(`${dir}/adapter_config.json`, "old");
    const before = await tree(dir);
    await assert.rejects(
      undoneOnFailure(dir, failingRun(dir, ["adapter_config.json", ".results.txt.tmp-1", "runs/second/", "best/"])),
    );
    assert.deepEqual(await tree(dir), before);
    assert.equal(await Deno.readTextFile(`${dir}/adapter_config.json`), "new", "old files are not restored, only kept");
  });

  await t.step("a new checkpoint keeps everything, and the message says how to resume", async () => {
    const dir = `${root}/resumable`;
    await assert.rejects(
      undoneOnFailure(
        dir,
        failingRun(dir, ["checkpoint-9/", "checkpoint-10/", "metrics.jsonl"]),
        (c) => `${c} is kept: continue with --resume_from_checkpoint ${c}`,
      ),
      (e: Error) => {
        assert.equal(
          e.message,
          `No space left on device (os error 28); ${dir}/checkpoint-10 is kept: continue with ` +
            `--resume_from_checkpoint ${dir}/checkpoint-10`,
        );
        return true;
      },
    );
    assert.deepEqual(await tree(dir), ["checkpoint-10/", "checkpoint-9/", "metrics.jsonl"]);
  });

  await t.step("a run that succeeds keeps what it wrote", async () => {
    const dir = `${root}/ok`;
    const value = await undoneOnFailure(dir, async () => {
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/results.txt`, "Accuracy: 1\n");
      return 7;
    });
    assert.equal(value, 7);
    assert.deepEqual(await tree(dir), ["results.txt"]);
  });
  await Deno.remove(root, { recursive: true });
});

Deno.test("checkOutputFolder: a missing folder or a folder passes, a file is one line naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lorac-output-dir-" });
  await checkOutputFolder(`${dir}/missing`, "--output_dir");
  await checkOutputFolder(dir, "--output_dir");
  await Deno.writeTextFile(`${dir}/file`, "");
  await assert.rejects(checkOutputFolder(`${dir}/file`, "--results_dir"), {
    message: `--results_dir ${dir}/file is a file; choose a folder (it is created when missing) or move the file away`,
  });
  await Deno.remove(dir, { recursive: true });
});
