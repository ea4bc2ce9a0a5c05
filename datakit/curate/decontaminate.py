"""Benchmark decontamination: drop training documents sharing an n-gram with an eval item.

Index: every `ngram`-word n-gram of each item's text (question + answer / choices), normalized
and word-split exactly as datatrove's NGramsDecontFilter does with the training text, hashed to
64 bits. Filter: datatrove's NGramsDecontFilter, reading our index, which keeps the item id, so a
removal's detail says "<eval set>#<item id>: <matching n-gram>".

An item shorter than `ngram` words contributes no n-gram and can never match (counted in the
summary as `items_too_short`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import load_word_tokenizer

from datakit.curate.evalsets import EvalItem, load_eval_set
from datakit.curate.minhash import STR_HASH
from datakit.curate.spec import DecontaminateSpec

INDEX_NAME = "items.npz"


def decont_config(spec: DecontaminateSpec) -> NGramsDecontConfig:
    return NGramsDecontConfig(n_grams=spec.ngram, hash_config=STR_HASH)


def item_hashes(text: str, config: NGramsDecontConfig, tokenizer) -> list[int]:
    from datatrove.utils.hashing import create_hash_func

    words = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
    hash_fn = create_hash_func(config.hash_config)
    return [hash_fn(" ".join(g)) for g in ngrams(words, config.n_grams)]


def build_index(spec: DecontaminateSpec, index_dir: Path, *, file: str, base_dir: Path | None = None) -> dict:
    """Read every eval set (UserError if one cannot be read) and write the n-gram index.
    Returns {eval set: {"items": n, "items_too_short": k}}."""
    items: list[EvalItem] = []
    for name in spec.against:
        items.extend(load_eval_set(name, spec.files, file=file, base_dir=base_dir))
    config = decont_config(spec)
    tokenizer = load_word_tokenizer("en")
    hashes: list[int] = []
    owner: list[int] = []
    per_set: dict[str, dict[str, int]] = {n: {"items": 0, "items_too_short": 0} for n in spec.against}
    for i, item in enumerate(items):
        hs = item_hashes(item.text, config, tokenizer)
        per_set[item.benchmark]["items"] += 1
        if not hs:
            per_set[item.benchmark]["items_too_short"] += 1
        hashes.extend(hs)
        owner.extend([i] * len(hs))
    index_dir.mkdir(parents=True, exist_ok=True)
    labels = np.array([f"{it.benchmark}#{it.item_id}" for it in items], dtype=object)
    tmp = index_dir / (INDEX_NAME + ".tmp.npz")
    np.savez(tmp, hashes=np.array(hashes, dtype=np.uint64), owner=np.array(owner, dtype=np.int64),
             labels=np.array(labels.tolist(), dtype=str))
    tmp.replace(index_dir / INDEX_NAME)
    (index_dir / "sets.json").write_text(json.dumps(per_set))
    return per_set


class ItemNGramsDecontFilter(NGramsDecontFilter):
    """datatrove's NGramsDecontFilter over our per-item index ("<eval set>#<item id>")."""

    def load_index_hashes(self):
        data = np.load(Path(self.index_folder.path) / INDEX_NAME)
        labels = data["labels"].tolist()
        self._index_hashes = {h: labels[o] for h, o in zip(data["hashes"].tolist(), data["owner"].tolist())}


def decont_reason(doc: Document) -> tuple[str, str | None]:
    md = doc.metadata
    return "contaminated", f"{md.get('contaminated_task')}: {md.get('contaminated_ngram')}"
