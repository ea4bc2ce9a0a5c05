"""A small model for the eval tests, in seconds: datakit's BPE tokenizer trained on the embedded samples and
procedural planning records, a held-out mixture (Contract 2) tokenized with it, and a randomly initialised
Llama of the `tiny` preset's shape saved as a transformers folder (the layout `titan export --to hf` writes).
An untrained model scores near chance: the tests check the numbers against hand computations, not levels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from export_fixture import corpus, train_tok, write_text_mixture

CONTEXT = 1024


def make_hf_model(root: Path, *, context: int = CONTEXT) -> dict[str, Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    docs = corpus(n_planning=60, tmp=root / "synth")
    tok = train_tok(docs, root / "tokenizer" / "tokenizer.json")
    mixture = write_text_mixture(root / "mix", {k: v[:40] for k, v in docs.items()}, tok, "eval-train")
    heldout = write_text_mixture(root / "mix" / "heldout", {k: v[40:46] for k, v in docs.items()}, tok, "eval-heldout")
    vocab = json.loads(tok.read_text())
    n_vocab = len(vocab["model"]["vocab"]) + len([a for a in vocab.get("added_tokens", []) if a["content"] not in vocab["model"]["vocab"]])
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=n_vocab, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=context, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0, rope_theta=10000.0)
    hf = root / "hf"
    LlamaForCausalLM(cfg).save_pretrained(hf)
    shutil.copyfile(tok, hf / "tokenizer.json")
    (hf / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                                                          "pad_token": "<pad>", "model_max_length": context}))
    return {"root": root, "hf": hf, "tokenizer": tok, "mixture": mixture, "heldout": heldout, "docs": docs}
