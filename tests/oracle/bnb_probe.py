"""Whether this machine's bitsandbytes quantizes NF4 as bitsandbytes defines it (its reference code and CUDA
kernels: the flattened tensor cut into blocks, each scaled by its absmax, every value rounded to the nearest of the
16 NF4 codes). bitsandbytes 0.50.2's CPU path departs from that on some CPUs (seen 2026-12-07 on an Intel Xeon with
AVX-512 and AMX: [40, 96] at blocksize 64 off by up to 0.1, [64, 64] at blocksize 128 by 1.5), and a reference that
is wrong there cannot judge lorac's NF4.

params: none; outputs: no tensors, params {"ok": bool, "why": "..."}.
"""

import bitsandbytes
import bitsandbytes.functional as F
import torch

from oracle_io import read_inputs, write_outputs

read_inputs()
torch.manual_seed(0)
code = F.get_4bit_type("nf4", device="cpu")
worst = []
for shape, blocksize in (((40, 96), 64), ((64, 64), 128), ((32, 130), 64)):
    w = torch.randn(*shape)
    packed, state = F.quantize_4bit(w, blocksize=blocksize, quant_type="nf4")
    theirs = F.dequantize_4bit(packed, state)
    blocks = w.reshape(-1, blocksize)
    absmax = blocks.abs().max(dim=1, keepdim=True).values
    nearest = ((blocks / absmax).unsqueeze(-1) - code).abs().argmin(-1)
    defined = (code[nearest] * absmax).reshape(shape)
    off = ((theirs - defined).abs() > 1e-6).sum().item()
    if off:
        worst.append(f"{list(shape)} blocksize {blocksize}: {off} elements off")
write_outputs({}, {
    "ok": not worst,
    "why": f"bitsandbytes {bitsandbytes.__version__} on this CPU does not quantize NF4 as defined ({'; '.join(worst)})",
})
