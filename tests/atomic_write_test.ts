import assert from "node:assert/strict";
import { writeFileAtomic } from "../lib/util/atomic_write.ts";

const MODULE = new URL("../lib/util/atomic_write.ts", import.meta.url).href;

const listing = async (dir: string) => (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();

// The writes fail for real: the kernel refuses a file past the size limit (ulimit -f, SIGXFSZ ignored so the write
// returns EFBIG), as a full disk refuses it with ENOSPC; or the rename meets a folder. No hook in the code.
Deno.test("writeFileAtomic: a write that fails midway or a rename that fails leaves the old file and no temp file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "lorac-atomic-" });
  await Deno.writeTextFile(`${dir}/results.txt`, "old\n");

  await t.step("the write fails midway (file size limit: 8 KiB)", async () => {
    const script = `import { writeFileAtomic } from "${MODULE}";
      await writeFileAtomic(Deno.args[0], new Uint8Array(100_000)).catch((e) => { console.error(e.message); Deno.exit(3); });`;
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        `trap '' XFSZ; ulimit -f 16; exec "$@"`,
        "sh",
        Deno.execPath(),
        "eval",
        script,
        `${dir}/results.txt`,
      ],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 3, "the write failed and the error reached the caller");
    assert.equal(
      new TextDecoder().decode(out.stderr),
      `cannot write ${dir}/results.txt: File too large (os error 27)\n`,
    );
    assert.equal(await Deno.readTextFile(`${dir}/results.txt`), "old\n", "the old file is untouched");
    assert.deepEqual(await listing(dir), ["results.txt"], "no temporary file is left");
  });

  await t.step("the rename fails (the target is a folder)", async () => {
    await Deno.mkdir(`${dir}/report.html`);
    await Deno.writeTextFile(`${dir}/report.html/keep`, "x");
    await assert.rejects(writeFileAtomic(`${dir}/report.html`, "<html>"), /^Error: cannot write .*report\.html: /);
    assert.deepEqual(await listing(dir), ["report.html", "results.txt"], "no temporary file is left");
    assert.deepEqual(await listing(`${dir}/report.html`), ["keep"]);
  });

  await t.step("a write that succeeds replaces the file whole", async () => {
    await writeFileAtomic(`${dir}/results.txt`, "new\n");
    assert.equal(await Deno.readTextFile(`${dir}/results.txt`), "new\n");
    assert.deepEqual(await listing(dir), ["report.html", "results.txt"]);
  });
  await Deno.remove(dir, { recursive: true });
});
