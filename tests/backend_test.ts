import assert from "node:assert/strict";
import { KernelError, openBackend } from "../lib/backend/backend.ts";
import { fromBf16, toBf16 } from "../lib/backend/dtype.ts";

Deno.test("backend: a tensor round-trips host -> device -> host for every dtype", async () => {
  using backend = await openBackend("cpu");
  const cases = [
    { dtype: "f32", data: new Float32Array([1.5, -2, 3e-8, 7]) },
    { dtype: "bf16", data: toBf16([1, -0.5, 3, 1e10]) },
    { dtype: "i32", data: new Int32Array([1, -2, 2147483647, 0]) },
    { dtype: "u8", data: new Uint8Array([0, 255, 7, 9]) },
  ] as const;
  for (const { dtype, data } of cases) {
    // deno-lint-ignore no-explicit-any
    using t = backend.fromHost(data as any, [2, 2], dtype);
    assert.deepEqual(t.toHost(), data, dtype);
  }
});

Deno.test("backend: every allocation is counted and freed by `using`", async () => {
  using backend = await openBackend("cpu");
  const before = backend.liveAllocations();
  {
    using _a = backend.empty([10], "f32");
    using _b = backend.filled([3, 3], "bf16");
    assert.equal(backend.liveAllocations(), before + 2);
  }
  assert.equal(backend.liveAllocations(), before);
});

Deno.test("backend: filled, copy and convert", async () => {
  using backend = await openBackend("cpu");
  using z = backend.filled([5], "f32");
  assert.deepEqual(z.toHost(), new Float32Array(5));
  using src = backend.fromHost(new Float32Array([1, 0.1, -3.3]), [3], "f32");
  using bf = backend.convert(src, "bf16");
  assert.deepEqual(bf.toHost(), toBf16([1, 0.1, -3.3]));
  using back = backend.convert(bf, "f32");
  assert.deepEqual(back.toHost(), fromBf16(toBf16([1, 0.1, -3.3])));
  using dst = backend.empty([3], "f32");
  backend.copy(dst, src);
  assert.deepEqual(dst.toHost(), src.toHost());
});

Deno.test("backend: bf16 rounding is round-to-nearest-even, NaN stays NaN", () => {
  // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1).
  assert.deepEqual(
    toBf16([1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN, Infinity]),
    new Uint16Array([0x3f80, 0x3f82, 0x7fc0, 0x7f80]),
  );
});

Deno.test("backend: a failing native call throws KernelError with the library's message", async () => {
  using backend = await openBackend("cpu");
  using t = backend.empty([4], "f32");
  assert.throws(
    () => backend.check(backend.lib.symbols.lorac_convert(backend.ctx, t.ptr, 2, t.ptr, 0, 4n)),
    (e: unknown) => e instanceof KernelError && /dtypes must be F32 or BF16/.test(e.message),
  );
});

Deno.test("backend: a freed tensor refuses further use", async () => {
  using backend = await openBackend("cpu");
  const t = backend.empty([2], "f32");
  t.free();
  t.free();
  assert.throws(() => t.ptr, /used after free/);
});

Deno.test("backend: the device name says cpu and the kernel path", async () => {
  using backend = await openBackend("cpu");
  assert.match(backend.deviceName, /^cpu: .+, \d+ threads, (amx|avx512|avx2|portable)$/);
});

Deno.test("backend: the compute dtype is f32 or bf16; anything else is refused with what to pass", async () => {
  using backend = await openBackend("cpu", { computeDtype: "bf16" });
  const s = backend.lib.symbols;
  backend.check(s.lorac_set_compute_dtype(backend.ctx, 0));
  assert.throws(
    () => backend.check(s.lorac_set_compute_dtype(backend.ctx, 2)),
    /lorac_set_compute_dtype: dtype must be F32 \(0\) or BF16 \(1\), got 2/,
  );
  assert.equal(s.lorac_set_compute_dtype(null, 1), 1);
});

Deno.test("backend: --device cuda without a usable GPU names what is missing", async () => {
  let driver = true;
  try {
    Deno.dlopen("libcuda.so.1", {}).close();
  } catch {
    driver = false;
  }
  if (driver) return; // a GPU machine: gpu-check covers CUDA.
  await assert.rejects(() => openBackend("cuda"), /--device cuda: no usable GPU \(driver: /);
  using auto = await openBackend("auto");
  assert.equal(auto.kind, "cpu");
});

Deno.test("backend: zero-element tensors round-trip", async () => {
  using backend = await openBackend("cpu");
  using t = backend.fromHost(new Float32Array(0), [0, 4], "f32");
  assert.deepEqual(t.toHost(), new Float32Array(0));
});
