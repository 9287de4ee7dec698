"""Times HF `tokenizers` for bench/tokenizer_bench.ts.

Reads one argument, a JSON file: {"texts": [...], "cases": [...], "workdir": path, "reps": int}.
Each case is built as tests/oracle/tokenizer_oracle.py builds it (which also writes the files
lorac loads into workdir/<case>/). Per case it times, without special tokens, in CPU seconds of
this process (steadier than the wall clock on a shared machine) unless marked wall:
  load   Tokenizer.from_str of the case's tokenizer.json
  cold   one pass of encode() over the texts on a fresh tokenizer (empty word cache), one thread
  warm   the best of `reps` further passes of encode(), one thread
  batch  the best of `reps` encode_batch() calls, wall clock (Rust threads on every core)
and prints one JSON object: {"tokenizers": version, "threads": n, "results": {case: {...}}}.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "oracle"))

import tokenizers  # noqa: E402
from tokenizer_oracle import CASES  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def seconds(fn):
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def wall_seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        params = json.load(f)
    texts, reps = params["texts"], params["reps"]
    results = {}
    for case in params["cases"]:
        spec = CASES[case](os.path.join(params["workdir"], case)).to_str()
        load = seconds(lambda: Tokenizer.from_str(spec))
        tok = Tokenizer.from_str(spec)
        tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        tok = Tokenizer.from_str(spec)
        one_by_one = lambda: [tok.encode(t, add_special_tokens=False) for t in texts]  # noqa: E731
        cold = seconds(one_by_one)
        warm = min(seconds(one_by_one) for _ in range(reps))
        batch = min(wall_seconds(lambda: tok.encode_batch(texts, add_special_tokens=False)) for _ in range(reps))
        results[case] = {"tokens": tokens, "load": load, "cold": cold, "warm": warm, "batch": batch}
    print(json.dumps({"tokenizers": tokenizers.__version__, "threads": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
