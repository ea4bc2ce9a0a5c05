"""FramedTokenizer's fast path (encode_batch_fast + one numpy copy per batch) writes the same bytes as
datatrove's own DocumentTokenizer loop (encode_batch + struct.pack per document)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TEXTS = ["def f(x):\n    return x + 1", "Plan: ship the crane, then the berth.", "x" * 5000, "é ü — 日本語 tokens", "a"]


def _tokenize(tokenizer: str, out: str, fast: bool, token_size: int) -> dict[str, bytes]:
    """In a fresh process: a Rust tokenizer must not run in pytest's process before datatrove forks."""
    from datatrove.data import Document
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    from datakit.mix.steps import FramedTokenizer

    step = FramedTokenizer(out, tokenizer_name_or_path=tokenizer, save_filename="t", shuffle_documents=False, batch_size=2)
    step.token_size = token_size  # a cached property (vocab > 65,536 -> 4 bytes): both widths are tested
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(TEXTS * 3)]
    writer = FramedTokenizer.write_unshuffled if fast else DocumentTokenizer.write_unshuffled
    writer(step, iter(docs), "t.ds")
    return {p.name: p.read_bytes() for p in sorted(Path(out).iterdir())}


def test_fast_path_writes_datatroves_bytes(smoke_tokenizer, tmp_path):
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        for token_size in (2, 4):
            fast = pool.submit(_tokenize, str(smoke_tokenizer), str(tmp_path / f"fast{token_size}"), True, token_size).result()
            slow = pool.submit(_tokenize, str(smoke_tokenizer), str(tmp_path / f"slow{token_size}"), False, token_size).result()
            assert {"t.ds", "t.ds.index"} <= set(fast)
            assert fast == slow
            assert len(fast["t.ds"]) > token_size * len(TEXTS) * 3 * 3  # <s>, </s> and text tokens of 15 documents
