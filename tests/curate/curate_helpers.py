"""Helpers for the curation tests (a plain module: `conftest` names clash across test folders).

Shared builders for the curation tests: deterministic English-like corpora, documents on disk
in the builder's format, a tiny tokenizer, and datatrove pipelines run in-process."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pytest


def vocabulary() -> list[str]:
    from pydoc_data.topics import topics

    words = sorted({w.lower() for w in re.findall(r"[A-Za-z]{3,12}", " ".join(topics.values()))})
    return words


VOCAB = vocabulary()


def random_text(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(VOCAB) for _ in range(n_words)]
    # sentences of 12 words so heuristic filters see prose
    out = []
    for i in range(0, len(words), 12):
        s = " ".join(words[i:i + 12])
        out.append(s[0].upper() + s[1:] + ".")
    return " ".join(out)


def edit_words(rng: random.Random, text: str, n_edits: int) -> str:
    words = text.split(" ")
    for _ in range(n_edits):
        i = rng.randrange(len(words))
        words[i] = rng.choice(VOCAB)
    return " ".join(words)


def write_docs(folder: Path, docs: list[dict], name: str = "00000.jsonl.gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with gzip.open(path, "wt") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    return path


def read_docs(folder: Path) -> list[dict]:
    out = []
    for p in sorted(Path(folder).glob("*.jsonl.gz")):
        with gzip.open(p, "rt") as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out


def doc(source: str, i: int, text: str, **meta) -> dict:
    return {"id": f"{source}/{i:05d}", "text": text, "metadata": {"_source": source, **meta}}


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> str:
    """A small byte-level BPE tokenizer.json trained on the vocabulary (stands in for the mixture's)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([" ".join(VOCAB)] * 3, trainers.BpeTrainer(vocab_size=400, show_progress=False))
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return str(path)


def run_local(pipeline, tmp: Path, tasks: int = 1, workers: int = 1) -> None:
    from datatrove.executor import LocalPipelineExecutor

    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=str(tmp / "logs")).run()
