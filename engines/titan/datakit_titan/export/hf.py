"""TorchTitan checkpoint -> a Hugging Face folder that `transformers` loads as LlamaForCausalLM:

    model.safetensors        weights through TorchTitan's own Llama3StateDictAdapter (q/k permutation
                             for HF's rotate-half RoPE, tied lm_head dropped), bf16 by default
    config.json              the phase's shape, RoPE (theta and scaling) and trained context
    generation_config.json   bos 1, eos </s> or </answer>, pad 0
    tokenizer.json, tokenizer_config.json, special_tokens_map.json   the mixture's tokenizer + tags
    README.md                model card: mixture, phases, steps, eval numbers where they exist
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from datakit.errors import UserError
from datakit.tokenizer.train import BOS, EOS, PAD, PLANNING_TAGS
from datakit_titan.export.card import model_card
from datakit_titan.export.checkpoint import Trained, load_model
from datakit_titan.export.staging import staged_folder

DTYPES = ("bfloat16", "float16", "float32")
# <problem>..</problem> from the user; the model writes <thinking>..</thinking><answer>..</answer>
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<problem>{{ m['content'] }}</problem>"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)


def rope_parameters(t: Trained) -> dict:
    """The phase's RoPE as transformers' `rope_parameters` (TorchTitan's llama/yarn formulas, whose
    defaults are low/high freq factor 1/4 and beta fast/slow 32/1, no YaRN attention scaling)."""
    r = t.rope
    if r["scaling"] == "none":
        return {"rope_type": "default", "rope_theta": r["theta"]}
    if r["scaling"] == "llama":
        return {"rope_type": "llama3", "rope_theta": r["theta"], "factor": r["factor"], "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": r["original_seq_len"]}
    return {"rope_type": "yarn", "rope_theta": r["theta"], "factor": r["factor"], "original_max_position_embeddings": r["original_seq_len"],
            "beta_fast": 32.0, "beta_slow": 1.0, "attention_factor": 1.0, "truncate": True}


def hf_config(t: Trained, dtype: str = "bfloat16") -> dict:
    """config.json: LlamaForCausalLM with the phase's shape (also the legacy rope_theta / rope_scaling
    keys, which transformers 4.x and llama.cpp's converter read)."""
    from transformers import LlamaConfig

    p = t.preset
    rope = rope_parameters(t)
    cfg = LlamaConfig(
        vocab_size=t.vocab_size, hidden_size=p.dim, intermediate_size=p.ffn_hidden, num_hidden_layers=p.n_layers,
        num_attention_heads=p.n_heads, num_key_value_heads=p.n_kv_heads, head_dim=p.head_dim, hidden_act="silu",
        max_position_embeddings=t.context, rms_norm_eps=p.norm_eps, tie_word_embeddings=p.tie_embeddings,
        bos_token_id=t.manifest.tokenizer.bos_id, eos_token_id=t.manifest.tokenizer.eos_id, pad_token_id=t.manifest.tokenizer.pad_id,
        rope_parameters=rope, attention_bias=False, mlp_bias=False,
    )
    d = json.loads(cfg.to_json_string())  # the keys that differ from defaults, as save_pretrained writes them
    d.update(architectures=["LlamaForCausalLM"], torch_dtype=dtype, dtype=dtype, rope_theta=rope["rope_theta"],
             rope_scaling=None if rope["rope_type"] == "default" else {k: v for k, v in rope.items() if k != "rope_theta"})
    return d


def hf_state_dict(t: Trained, model=None, dtype: str = "bfloat16") -> dict:
    """The checkpoint's weights under HF names, through TorchTitan's Llama3StateDictAdapter."""
    import torch
    from torchtitan.models.llama3.state_dict_adapter import Llama3StateDictAdapter

    from datakit_titan.export.checkpoint import _model_spec

    model = model if model is not None else load_model(t)
    adapter = Llama3StateDictAdapter(_model_spec(t).model, None)
    sd = adapter.to_hf({k: v.detach() for k, v in model.state_dict().items()})
    return {k: v.to(getattr(torch, dtype)).contiguous() for k, v in sd.items()}


def tokenizer_files(t: Trained) -> dict[str, str]:
    """tokenizer.json (the mixture's, byte for byte) + the config files AutoTokenizer reads."""
    tok = json.loads(t.tokenizer.read_text())
    added = {a["content"] for a in tok.get("added_tokens", [])}
    missing = [s for s in (PAD, BOS, EOS) if s not in added]
    if missing:
        raise UserError(f"tokenizer has no {missing} special tokens", file=t.tokenizer, fix="train it with `datakit tokenizer train`")
    tags = [s for s in PLANNING_TAGS if s in added]
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
        "add_bos_token": True, "add_eos_token": False, "model_max_length": t.context, "clean_up_tokenization_spaces": False,
        "additional_special_tokens": tags, "chat_template": CHAT_TEMPLATE,
    }
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "additional_special_tokens": tags}
    return {"tokenizer_config.json": json.dumps(config, indent=2), "special_tokens_map.json": json.dumps(special, indent=2)}


def generation_config(t: Trained) -> dict:
    """Greedy by default; stops at </s> or, for planning answers, at </answer>."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(t.tokenizer))
    eos = [t.manifest.tokenizer.eos_id] + ([tok.token_to_id("</answer>")] if tok.token_to_id("</answer>") is not None else [])
    return {"bos_token_id": t.manifest.tokenizer.bos_id, "eos_token_id": eos if len(eos) > 1 else eos[0],
            "pad_token_id": t.manifest.tokenizer.pad_id, "do_sample": False, "max_length": t.context}


def export_hf(t: Trained, out: str | Path, *, dtype: str = "bfloat16", force: bool = False, model=None) -> Path:
    """Write the HF folder `out` (complete or not at all)."""
    from huggingface_hub import save_torch_state_dict

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}", field="--dtype", fix=f"use one of {', '.join(DTYPES)}")
    out = Path(out)
    sd = hf_state_dict(t, model, dtype)
    with staged_folder(out, force=force) as tmp:
        save_torch_state_dict(sd, tmp, max_shard_size="5GB")
        (tmp / "config.json").write_text(json.dumps(hf_config(t, dtype), indent=2, sort_keys=True))
        (tmp / "generation_config.json").write_text(json.dumps(generation_config(t), indent=2))
        shutil.copyfile(t.tokenizer, tmp / "tokenizer.json")
        for name, text in tokenizer_files(t).items():
            (tmp / name).write_text(text)
        (tmp / "README.md").write_text(model_card(t, fmt="hf", dtype=dtype))
    return out
