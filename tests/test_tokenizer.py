"""The tokenizer: special ids as in the model config, planning tags atomic, loadable by transformers."""

import json

import pytest

from datakit.errors import UserError
from datakit.tokenizer.train import LLAMA3_PATTERN, SPECIAL_TOKENS, tokenizer_vocab_size, train_tokenizer


def test_special_ids_and_vocab(smoke_tokenizer):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(smoke_tokenizer))
    assert [tok.token_to_id(t) for t in ("<pad>", "<s>", "</s>")] == [0, 1, 2]
    assert tok.get_vocab_size() == 4096 == tokenizer_vocab_size(smoke_tokenizer)
    ids = tok.encode("<problem>plan</problem><thinking>1. a</thinking><answer>x</answer>").ids
    for tag in SPECIAL_TOKENS[3:]:
        assert tok.token_to_id(tag) in ids  # each tag is one token, never split
    assert ids[0] == 1  # plain encode adds <s> like Llama 3


def test_llama3_pretokenizer_named_in_json(smoke_tokenizer):
    data = json.loads(smoke_tokenizer.read_text())
    pretok = json.dumps(data["pre_tokenizer"])
    assert json.dumps(LLAMA3_PATTERN)[1:-1] in pretok  # the exact regex llama.cpp knows as "llama-bpe"


def test_loads_in_transformers_and_roundtrips(smoke_tokenizer):
    from transformers import PreTrainedTokenizerFast

    t = PreTrainedTokenizerFast(tokenizer_file=str(smoke_tokenizer))
    text = "def f(x):\n    return x * 2  # doubling 12345"
    ids = t(text)["input_ids"]
    assert t.decode(ids, skip_special_tokens=True) == text


def test_too_small_corpus_refuses_requested_vocab(tmp_path):
    with pytest.raises(UserError, match="--vocab-size"):
        train_tokenizer(["tiny corpus"] * 10, tmp_path / "t.json", vocab_size=65536)
