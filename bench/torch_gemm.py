"""Times torch's CPU matmuls for bench/gemm_vs_torch.ts.

Reads one JSON argument: {"shapes": [{"name", "M", "N", "K"}], "reps": int,
"budget": seconds, "threads": int}. For every shape, dtype (bf16, fp32) and
op it runs one warm-up, then up to `reps` timed calls within `budget`
seconds, and prints one JSON object:
{"torch": version, "results": [{"name", "op", "dtype", "seconds": [...],
"cpu_seconds": [...]}]} (cpu_seconds: process CPU time of each call, all threads).

  forward: F.linear(x, w)  = x[M,K] @ w[N,K]^T   (what nn.Linear runs)
  dx:      dy[M,N] @ w[N,K]                      (what autograd runs for grad_input)
"""

import json
import sys
import time

import torch
import torch.nn.functional as F


def timed(fn, reps, budget):
    """One warm-up, then up to `reps` timed calls, stopping early (after at
    least one) once `budget` seconds are spent: bf16 matmuls without bf16
    hardware can take many seconds each."""
    fn()
    seconds, cpu_seconds = [], []
    while len(seconds) < reps and (not seconds or sum(seconds) < budget):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
    return seconds, cpu_seconds


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    results = []
    with torch.inference_mode():
        for shape in cfg["shapes"]:
            m, n, k = shape["M"], shape["N"], shape["K"]
            for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
                x = torch.randn(m, k, dtype=dtype)
                w = torch.randn(n, k, dtype=dtype) * 0.02
                dy = torch.randn(m, n, dtype=dtype)
                ops = (("forward", lambda: F.linear(x, w)), ("dx", lambda: dy @ w))
                for op, fn in ops:
                    seconds, cpu_seconds = timed(fn, cfg["reps"], cfg["budget"])
                    results.append(
                        {"name": shape["name"], "op": op, "dtype": name, "seconds": seconds, "cpu_seconds": cpu_seconds}
                    )
    print(json.dumps({"torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    main()
