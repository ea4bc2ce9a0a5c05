"""TorchTitan checkpoint -> a GGUF file llama.cpp runs (arch "llama"), written with the `gguf` package.

Why not llama.cpp's `convert_hf_to_gguf.py`: it identifies a BPE pre-tokenizer by hashing the
tokenization of a fixed text and refuses hashes it does not know, and ours (a new vocabulary with the
Llama 3 regex) is unknown to it. The regex is Llama 3's, which llama.cpp implements under the name
"llama-bpe", so we write the GGUF directly and name it.

Weights go in TorchTitan's layout as they are: TorchTitan's complex RoPE rotates adjacent pairs, which
is llama.cpp's "llama" RoPE, so q/k need no permutation (the HF export permutes for rotate-half).
A phase-3 RoPE change is carried exactly: the base goes in `llama.rope.freq_base`, and a llama/yarn
scaling goes in as per-dimension frequency factors (`rope_freqs`, llama.cpp's own mechanism for
Llama 3.1 scaling) computed from TorchTitan's own RoPE cache, so C++ rotates by the same angles.

Tokenizer: byte-level BPE ("gpt2" model) with its merges; <pad>/<s>/</s> are control tokens; the
planning tags are user-defined tokens (always matched in text and always printed, as HF does); BOS
is added on encode and EOS is not (as the HF tokenizer's post-processor does).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from datakit.tokenizer.train import PLANNING_TAGS
from datakit_titan.export.checkpoint import Trained, load_model
from datakit_titan.export.quantize import BASE_TYPES, QUANT_TYPES, quantize


def _tensor_names(n_layers: int, tied: bool) -> dict[str, str]:
    """TorchTitan state-dict key -> GGUF tensor name (gguf.TENSOR_NAMES of arch llama)."""
    import gguf

    T, N = gguf.MODEL_TENSOR, gguf.TENSOR_NAMES
    names = {"tok_embeddings.weight": N[T.TOKEN_EMBD] + ".weight", "norm.weight": N[T.OUTPUT_NORM] + ".weight"}
    if not tied:
        names["lm_head.weight"] = N[T.OUTPUT] + ".weight"
    per_layer = {
        "attention_norm": T.ATTN_NORM, "attention.qkv_linear.wq": T.ATTN_Q, "attention.qkv_linear.wk": T.ATTN_K,
        "attention.qkv_linear.wv": T.ATTN_V, "attention.wo": T.ATTN_OUT, "ffn_norm": T.FFN_NORM,
        "feed_forward.w1": T.FFN_GATE, "feed_forward.w3": T.FFN_UP, "feed_forward.w2": T.FFN_DOWN,
    }
    for i in range(n_layers):
        for ours, theirs in per_layer.items():
            names[f"layers.{i}.{ours}.weight"] = N[theirs].format(bid=i) + ".weight"
    return names


def vocab(t: Trained) -> tuple[list[str], list[int]]:
    """Tokens in id order (byte-level strings, as in tokenizer.json) and their llama.cpp token types."""
    import gguf

    tok = json.loads(t.tokenizer.read_text())
    by_id: dict[int, str] = {i: s for s, i in tok["model"]["vocab"].items()}
    special = set()
    for a in tok.get("added_tokens", []):
        by_id[a["id"]] = a["content"]
        special.add(a["id"])
    tokens, types = [], []
    for i in range(t.vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        s = by_id[i]
        tokens.append(s)
        if i in special:
            types.append(gguf.TokenType.USER_DEFINED if s in PLANNING_TAGS else gguf.TokenType.CONTROL)
        else:
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def rope_factors(model) -> np.ndarray | None:
    """Per-dimension frequency divisors that turn the base RoPE into the model's (None: no scaling).
    llama.cpp rotates pair i at position p by p * base^(-2i/d) / factor[i]."""
    import torch

    rope = model.layers["0"].attention.rope
    cfg = rope.config
    if cfg.scaling == "none":
        return None
    d = cfg.dim
    base = 1.0 / (cfg.theta ** (torch.arange(0, d, 2)[: d // 2].double() / d))
    scaled = torch.angle(rope.cache[1].to(torch.complex128))  # angle at position 1 = the pair's frequency
    return (base / scaled).float().numpy()


def _writer_meta(w, t: Trained, ftype) -> None:
    p = t.preset
    w.add_name(t.name)
    w.add_context_length(t.context)
    w.add_embedding_length(p.dim)
    w.add_block_count(p.n_layers)
    w.add_feed_forward_length(p.ffn_hidden)
    w.add_head_count(p.n_heads)
    w.add_head_count_kv(p.n_kv_heads)
    w.add_key_length(p.head_dim)
    w.add_value_length(p.head_dim)
    w.add_rope_dimension_count(p.head_dim)
    w.add_rope_freq_base(float(t.rope["theta"]))
    w.add_layer_norm_rms_eps(p.norm_eps)
    w.add_vocab_size(t.vocab_size)
    w.add_file_type(ftype)


def _add_tokenizer(w, t: Trained) -> None:
    import gguf

    from datakit_titan.export.hf import tokenizer_files

    tokens, types = vocab(t)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)  # it warns about our pair template's <s>, which GGUF has no use for
    with tempfile.TemporaryDirectory() as d:  # gguf's SpecialVocab reads an HF tokenizer folder
        shutil.copyfile(t.tokenizer, Path(d) / "tokenizer.json")
        for name, text in tokenizer_files(t).items():
            (Path(d) / name).write_text(text)
        special = gguf.SpecialVocab(d, load_merges=True, n_vocab=t.vocab_size)
    special.add_to_gguf(w, quiet=True)


def write_gguf(t: Trained, path: str | Path, *, qtype: str = "f16", model=None) -> Path:
    """Write one f32/f16/bf16 GGUF at `path` (the caller stages it; see export_gguf)."""
    import gguf

    ggml = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16, "bf16": gguf.GGMLQuantizationType.BF16}[qtype]
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16}[qtype]
    model = model if model is not None else load_model(t)
    names = _tensor_names(t.preset.n_layers, t.preset.tie_embeddings)
    w = gguf.GGUFWriter(str(path), "llama")
    _writer_meta(w, t, ftype)
    _add_tokenizer(w, t)
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    # provenance, read back by `titan quant-report` (llama.cpp's quantizer copies every key)
    w.add_uint64("datakit.n_params", int(sum(state[k].size for k in names)))
    w.add_string("datakit.tokenizer.sha256", t.manifest.tokenizer.sha256)
    w.add_string("datakit.mixture.spec_sha256", t.manifest.spec_sha256)
    w.add_string("datakit.checkpoint", f"{t.checkpoint} (step {t.step})")
    factors = rope_factors(model)
    if factors is not None:
        w.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", factors)
    for key, name in names.items():
        data = state[key]
        if data.ndim == 1 or qtype == "f32":  # norms stay f32, as llama.cpp's converter keeps them
            w.add_tensor(name, data.astype(np.float32, copy=False))  # shares the model's memory
            continue
        q = gguf.quants.quantize(data, ggml)
        shape = gguf.quant_shape_from_byte_shape(q.shape, ggml) if q.dtype == np.uint8 else q.shape
        w.add_tensor(name, q, raw_shape=shape, raw_dtype=ggml)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    return Path(path)


def export_gguf(t: Trained, out: str | Path, quants: list[str], *, force: bool = False, model=None, echo=print) -> list[Path]:
    """Write `out`/model-<quant>.gguf for each quant (complete folder or none): f32/f16/bf16 directly,
    the others through llama.cpp's quantizer from an f32 GGUF of the same weights."""
    from datakit_titan.export.card import model_card
    from datakit_titan.export.staging import staged_folder

    out = Path(out)
    model = model if model is not None else load_model(t)
    written = []
    with staged_folder(out, force=force) as tmp:
        for q in [q for q in quants if q in BASE_TYPES]:
            written.append(write_gguf(t, tmp / f"model-{q}.gguf", qtype=q, model=model))
            echo(f"  model-{q}.gguf: {written[-1].stat().st_size / 2**20:,.1f} MiB")
        rest = [q for q in quants if q in QUANT_TYPES]
        if rest:
            src = tmp / "model-f32.gguf" if "f32" in quants else write_gguf(t, tmp / ".source-f32.gguf", qtype="f32", model=model)
            for q in rest:
                written.append(quantize(src, tmp / f"model-{q}.gguf", q))
                echo(f"  model-{q}.gguf: {written[-1].stat().st_size / 2**20:,.1f} MiB (llama.cpp quantizer)")
            if src.name.startswith("."):
                src.unlink()
        (tmp / "README.md").write_text(model_card(t, fmt="gguf", files=[p.name for p in written]))
    return [out / p.name for p in written]
