import assert from "node:assert/strict";

const main = new URL("../cli/main.ts", import.meta.url).pathname;

async function lorac(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("cli: info --device cpu names the CPU and its kernel path", async () => {
  const r = await lorac("info", "--device", "cpu");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cpu: .+ threads, (amx|avx512|avx2|portable)\n$/);
});

Deno.test("cli: an unknown --device is one clear line and a non-zero exit", async () => {
  const r = await lorac("info", "--device", "gpu");
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'lorac: --device must be one of auto, cpu, cuda, got "gpu"\n');
});
