"""Shared by the PyTorch sides of the benchmarks: the model from the GGUF that
lorac loads (transformers dequantizes it to fp32), the process's peak RSS,
and the JSON line that says a side could not run.
"""

import json
import os
import resource
import sys


def skip(reason):
    """Prints {"skipped": reason} as the side's one JSON line and exits 0."""
    print(json.dumps({"skipped": reason}))
    sys.exit(0)


def load_gguf_llama(gguf, torch):
    """A fp32 LlamaForCausalLM from a GGUF file, through transformers' GGUF loading."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), torch_dtype=torch.float32
    )


def load_gguf_tokenizer(gguf):
    """The transformers tokenizer that the GGUF's metadata describes."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))


def maxrss_bytes():
    """This process's peak resident set so far, in bytes: VmHWM where /proc has it.

    Not getrusage's ru_maxrss there: a process started by fork and exec keeps
    the parent's peak in it (Linux carries the forked copy's high-water mark
    over the exec), so a side spawned by a big Deno process would report the
    parent's size. VmHWM belongs to the exec'd image alone.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux, bytes on macOS (which has no /proc).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
