"""NF4 reference: bitsandbytes' quantize_4bit / dequantize_4bit, plain and with
compress_statistics (double quantization of the absmax).

params: {"cases": [{"name", "blocksize"}]}; inputs: <name>.w (f32 or bf16, any shape).
outputs per case: packed (u8, flattened), absmax (f32), deq (f32; the dequantized
weight), deq_native (the dequantized weight in w's dtype), and from the double
quantization qabsmax (u8), absmax2 (f32), offset (f32 [1]), absmax_dq (f32).
"""

import copy

import bitsandbytes.functional as F
import torch

from oracle_io import read_inputs, write_outputs

params, inputs = read_inputs()
out = {}
for case in params["cases"]:
    name, blocksize = case["name"], case["blocksize"]
    w = inputs[name + ".w"]
    packed, state = F.quantize_4bit(w, blocksize=blocksize, quant_type="nf4")
    out[name + ".packed"] = packed.reshape(-1)
    out[name + ".absmax"] = state.absmax
    out[name + ".deq_native"] = F.dequantize_4bit(packed, state)
    state_f32 = copy.copy(state)
    state_f32.dtype = torch.float32
    out[name + ".deq"] = F.dequantize_4bit(packed, state_f32)

    packed2, state2 = F.quantize_4bit(w, blocksize=blocksize, quant_type="nf4", compress_statistics=True)
    assert torch.equal(packed2, packed), "compress_statistics changed the NF4 codes"
    out[name + ".qabsmax"] = state2.absmax
    out[name + ".absmax2"] = state2.state2.absmax
    out[name + ".offset"] = state2.offset.reshape(1)
    # The absmax dequantize_4bit rebuilds from the double quantization.
    out[name + ".absmax_dq"] = F.dequantize_blockwise(state2.absmax, state2.state2) + state2.offset

write_outputs(out)
