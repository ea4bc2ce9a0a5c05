"""Train the byte-level BPE tokenizer (HF `tokenizers`) on a deterministic sample of a spec's sources.

Ids 0/1/2 are `<pad>`, `<s>`, `</s>` as in the model config; the planning tags follow as special tokens.
Pre-tokenization uses Llama 3's regex, which llama.cpp knows by name ("llama-bpe"), so a GGUF export
tokenizes identically in C++.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from datakit.errors import UserError

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
PLANNING_TAGS = ["<problem>", "</problem>", "<thinking>", "</thinking>", "<answer>", "</answer>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *PLANNING_TAGS]
# Llama 3's pre-tokenizer pattern (tiktoken cl100k-style); llama.cpp's "llama-bpe" pre-tokenizer.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def new_bpe(vocab_size: int, min_frequency: int = 2):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    return tok, trainer


def train_tokenizer(texts: Iterable[str], out_path: str | os.PathLike, vocab_size: int, min_frequency: int = 2, strict: bool = True) -> dict:
    """Train, check the special ids, and write tokenizer.json + tokenizer_config.json (loadable by transformers/torchtitan)."""
    from tokenizers import processors

    tok, trainer = new_bpe(vocab_size, min_frequency)
    tok.train_from_iterator(texts, trainer=trainer)
    got = tok.get_vocab_size()
    if strict and got != vocab_size:
        raise UserError(
            f"the sample only supports {got:,} tokens, not the requested {vocab_size:,}",
            field="--vocab-size",
            fix="train on more text (--sample-bytes) or ask for a smaller --vocab-size",
        )
    for want, token in enumerate([PAD, BOS, EOS]):
        assert tok.token_to_id(token) == want, (token, tok.token_to_id(token))
    # Documents are framed `<s> text </s>` when the mixture builder tokenizes them; plain encode adds `<s>` only,
    # as Llama 3 does, so chat/inference code sees the usual behaviour.
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, 1)])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tok.save(str(tmp))
    os.replace(tmp, out)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 8192,
        "additional_special_tokens": PLANNING_TAGS,
    }
    (out.parent / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out.parent / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "additional_special_tokens": PLANNING_TAGS}, indent=2)
    )
    return {"path": str(out), "vocab_size": got}


def tokenizer_vocab_size(path: str | os.PathLike) -> int:
    """Vocab size read from tokenizer.json without loading the Rust tokenizer (safe before datatrove forks)."""
    data = json.loads(Path(path).read_text())
    ids = set(data["model"]["vocab"].values()) | {t["id"] for t in data.get("added_tokens", [])}
    return max(ids) + 1


def take_bytes(texts: Iterator[str], budget_bytes: int) -> Iterator[str]:
    used = 0
    for t in texts:
        if used >= budget_bytes:
            return
        used += len(t.encode("utf-8", "ignore"))
        yield t
