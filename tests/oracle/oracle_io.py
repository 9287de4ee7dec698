"""Reads the inputs the TypeScript harness (harness.ts) wrote and writes outputs back.

The exchange is a folder: manifest.json ({"params": ..., "tensors": {name: {dtype, shape}}})
beside one raw little-endian file per tensor, <name>.bin. Outputs go to <folder>/out/ in the
same layout.
"""

import json
import os
import sys

import torch

DTYPES = {
    "f32": torch.float32,
    "f64": torch.float64,
    "bf16": torch.bfloat16,
    "u8": torch.uint8,
    "i32": torch.int32,
}
NAMES = {v: k for k, v in DTYPES.items()}


def read_inputs():
    """Returns (params, tensors) from the folder named by argv[1]."""
    folder = sys.argv[1]
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    tensors = {}
    for name, meta in manifest["tensors"].items():
        with open(os.path.join(folder, name + ".bin"), "rb") as f:
            raw = bytearray(f.read())
        dtype = DTYPES[meta["dtype"]]
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(meta["shape"])
    return manifest["params"], tensors


def write_outputs(tensors, params=None):
    """Writes tensors (torch tensors of a dtype in DTYPES) and params to <folder>/out/."""
    out = os.path.join(sys.argv[1], "out")
    os.makedirs(out, exist_ok=True)
    meta = {}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype not in NAMES:
            raise TypeError(f"output {name}: dtype {t.dtype} has no exchange code; convert it to one of {list(DTYPES)}")
        meta[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape)}
        # Raw bytes through a uint8 view: numpy has no bfloat16.
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"params": params or {}, "tensors": meta}, f)
