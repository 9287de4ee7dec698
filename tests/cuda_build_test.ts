import assert from "node:assert/strict";
import { hasNvcc, libraryPath } from "../cuda/build.ts";
import { ABI_VERSION } from "../lib/backend/loader.ts";
import { symbols } from "../lib/backend/symbols.ts";

// Where nvcc is, `deno task build` (CI's build step) must have built the CUDA
// library. It opens without a GPU: the CUDA runtime is linked statically and
// looks for the driver only when first called.
const nvcc = await hasNvcc();
const path = libraryPath("cuda");

function openCuda(): Deno.DynamicLibrary<typeof symbols> {
  try {
    Deno.statSync(path);
  } catch {
    assert.fail(`${path} is missing although nvcc is here: run \`deno task build\``);
  }
  // dlopen resolves every symbol of the table: a missing export fails here, naming it
  // (those still marked optional come back null instead; the test below checks them).
  return Deno.dlopen(path, symbols);
}

function lastError(lib: Deno.DynamicLibrary<typeof symbols>): string {
  const ptr = lib.symbols.lorac_last_error(null);
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

Deno.test({
  name: "cuda build: libcudakernels exports every symbol of cuda/lorac.h with the expected ABI",
  ignore: !nvcc,
  fn() {
    const lib = openCuda();
    try {
      assert.equal(lib.symbols.lorac_abi_version(), ABI_VERSION);
      const table = lib.symbols as Record<string, unknown>;
      const missing = Object.keys(symbols).filter((name) => table[name] === null);
      assert.deepEqual(missing, [], `${path} lacks these symbols of cuda/lorac.h`);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "cuda build: without a usable GPU, device_count and ctx_create say whether the driver or the device is missing",
  ignore: !nvcc,
  fn() {
    const lib = openCuda();
    try {
      const count = new Int32Array([-1]);
      const status = lib.symbols.lorac_device_count(count);
      if (status === 0 && count[0] > 0) return; // a GPU answers: gpu-check covers this machine.
      assert.equal(status, 4, "LORAC_ERR_LIBRARY");
      assert.equal(count[0], 0);
      assert.match(lastError(lib), /^(driver|device): lorac_device_count: /);
      const ctx = new BigUint64Array(1);
      assert.equal(lib.symbols.lorac_ctx_create(0, 0, ctx), 4);
      assert.match(lastError(lib), /^(driver|device): lorac_ctx_create: /);
      assert.equal(ctx[0], 0n);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "cuda build: a NULL context is an argument error naming the call, never a crash",
  ignore: !nvcc,
  fn() {
    const lib = openCuda();
    const s = lib.symbols;
    const buf = new Uint8Array(64);
    const cases: [string, () => number][] = [
      ["lorac_sync", () => s.lorac_sync(null)],
      ["lorac_set_compute_dtype", () => s.lorac_set_compute_dtype(null, 1)],
      ["lorac_alloc", () => s.lorac_alloc(null, 16n, buf)],
      ["lorac_copy_h2d", () => s.lorac_copy_h2d(null, null, buf, 16n)],
      ["lorac_convert", () => s.lorac_convert(null, null, 0, null, 1, 4n)],
      ["lorac_nf4_quantize", () => s.lorac_nf4_quantize(null, null, 0, 64n, 64, null, null)],
      ["lorac_nf4_gemm", () => s.lorac_nf4_gemm(null, 1, 64, 64, null, 0, null, null, 64, null, 0, 0)],
      ["lorac_gemm", () => s.lorac_gemm(null, 0, 0, 1, 1, 1, 1, null, 0, 1, null, 0, 1, 0, null, 0, 1)],
      [
        "lorac_lora_forward",
        () => s.lorac_lora_forward(null, 1, 1, 1, 1, null, 0, null, null, 1, 0, 0n, null, null, 0),
      ],
      ["lorac_global_norm", () => s.lorac_global_norm(null, null, 0n, null)],
      ["lorac_adamw_step", () => s.lorac_adamw_step(null, null, 0n, 1e-3, 0.9, 0.999, 1e-8, 0, 1, null, 0)],
      ["lorac_add_scaled", () => s.lorac_add_scaled!(null, 4n, 1, null, 0, 0, null, 0, null, 0)],
      [
        "lorac_attention_forward",
        () => s.lorac_attention_forward!(null, 1, null, 1, 1, 1, 1, 64, 1, null, null, null, 0, null, null),
      ],
    ];
    try {
      for (const [name, call] of cases) {
        assert.equal(call(), 1, `${name}: LORAC_ERR_ARGUMENT`);
        assert.equal(lastError(lib), `${name}: ctx is NULL`);
      }
    } finally {
      lib.close();
    }
  },
});
