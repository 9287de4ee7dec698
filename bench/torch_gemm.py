"""Times torch's CPU matmuls for bench/gemm_vs_torch.ts.

Reads one JSON argument: {"shapes": [{"name", "M", "N", "K"}], "reps": int,
"budget": seconds, "threads": int}. For every shape, dtype (bf16, fp32) and
op it runs one warm-up, then up to `reps` timed calls within `budget`
seconds, and prints one JSON object:
{"torch": version, "results": [{"name", "op", "dtype", "seconds": [...],
"cpu_seconds": [...], "extrapolated": bool}]} (cpu_seconds: process CPU
time of each call, all threads).

  forward: F.linear(x, w)  = x[M,K] @ w[N,K]^T   (what nn.Linear runs)
  dx:      dy[M,N] @ w[N,K]                      (what autograd runs for grad_input)

Without bf16 hardware some of torch's bf16 matmuls take minutes at M = 2048.
A cell whose first call on PROBE_ROWS rows predicts more than `budget`
seconds a call is timed on those rows and scaled by M / PROBE_ROWS
(time is linear in M); it is marked "extrapolated".
"""

import json
import sys
import time

import torch
import torch.nn.functional as F

PROBE_ROWS = 256


def timed(fn, reps, budget):
    """One warm-up, then up to `reps` timed calls, stopping early (after at
    least one) once `budget` seconds are spent."""
    fn()
    seconds, cpu_seconds = [], []
    while len(seconds) < reps and (not seconds or sum(seconds) < budget):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
    return seconds, cpu_seconds


def make_call(op, rows, n, k, dtype):
    """The matmul of `op` with `rows` rows of input, on fresh random tensors."""
    w = torch.randn(n, k, dtype=dtype) * 0.02
    if op == "forward":
        x = torch.randn(rows, k, dtype=dtype)
        return lambda: F.linear(x, w)
    dy = torch.randn(rows, n, dtype=dtype)
    return lambda: dy @ w


def time_cell(op, m, n, k, dtype, reps, budget):
    probe_rows = min(m, PROBE_ROWS)
    probe = make_call(op, probe_rows, n, k, dtype)
    t0 = time.perf_counter()
    probe()
    predicted = (time.perf_counter() - t0) * m / probe_rows
    if predicted <= budget or probe_rows == m:
        seconds, cpu_seconds = timed(make_call(op, m, n, k, dtype), reps, budget)
        return seconds, cpu_seconds, False
    seconds, cpu_seconds = timed(probe, reps, budget)
    scale = m / probe_rows
    return [s * scale for s in seconds], [c * scale for c in cpu_seconds], True


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    results = []
    with torch.inference_mode():
        for shape in cfg["shapes"]:
            m, n, k = shape["M"], shape["N"], shape["K"]
            for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
                for op in ("forward", "dx"):
                    seconds, cpu_seconds, extrapolated = time_cell(op, m, n, k, dtype, cfg["reps"], cfg["budget"])
                    results.append(
                        {
                            "name": shape["name"],
                            "op": op,
                            "dtype": name,
                            "seconds": seconds,
                            "cpu_seconds": cpu_seconds,
                            "extrapolated": extrapolated,
                        }
                    )
    print(json.dumps({"torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    main()
