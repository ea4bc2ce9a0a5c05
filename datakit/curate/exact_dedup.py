"""Exact deduplication across all sources on datatrove's ExactDedup stages.

Content hash: 64-bit xxhash of the text lowercased with whitespace and punctuation folded and
diacritics removed (datatrove's `simplify_text`; numbers are kept, so "2+2=4" and "3+3=6" differ).
Of each group of identical texts the first in (task, position) order is kept; the others are
removed with reason "duplicate" and detail = the kept document's id.

Stages (datatrove): ExactDedupSignature (per task) -> ExactFindDedups (1 task) -> ExactDedupFilter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, get_sig_dtype
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.typeshelper import ExtensionHelperSD

from datakit.curate.doc_ids import read_ids

EXACT_NORM = TextNormConfig(norm_numbers=False)


def normalized_content(doc: Document) -> bytes:
    """The text that must match for two documents to be exact duplicates."""
    return simplify_text(doc.text, EXACT_NORM).encode("utf-8")


def exact_config() -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=normalized_content, hash_config=HashConfig(precision=64, hash_fc="xxhash"))


def write_duplicate_of(sig_dir: Path, dups_dir: Path, ids_dir: Path, tasks: int, out_path: Path) -> int:
    """Map each removed document id to the id of the kept document with the same hash; returns the
    number of removed documents. Reads stage 1's signatures (hash per document) and stage 2's
    duplicate lists (positions to remove per task)."""
    config = exact_config()
    sig_dtype = get_sig_dtype(config.hash_config)
    removed: dict[int, np.ndarray] = {}
    for f in sorted(Path(dups_dir).glob(f"*/*{ExtensionHelperSD.stage_2_duplicates}")):
        rank = int(f.name.removesuffix(ExtensionHelperSD.stage_2_duplicates))
        arr = np.fromfile(f, dtype="<u4")
        removed[rank] = np.concatenate([removed.get(rank, np.array([], "<u4")), arr])
    sigs = {}
    for rank in range(tasks):
        f = Path(sig_dir) / "0000" / f"{rank:05d}{ExtensionHelperSD.stage_1_signature}"
        sigs[rank] = np.fromfile(f, dtype=sig_dtype) if f.exists() else np.array([], dtype=sig_dtype)
    removed_hashes = set()
    for rank, docs in removed.items():
        s = sigs[rank]
        mask = np.isin(s["doc"], docs)
        removed_hashes.update(s["hash"][mask].tolist())
    kept: dict[int, str] = {}
    dup_of: dict[str, str] = {}
    pending: list[tuple[str, int]] = []
    for rank in range(tasks):
        s = sigs[rank]
        if not len(s):
            continue
        ids = read_ids(ids_dir, rank)
        rm = set(removed.get(rank, np.array([], "<u4")).tolist())
        for h, d in zip(s["hash"].tolist(), s["doc"].tolist()):
            if h not in removed_hashes:
                continue
            if d in rm:
                pending.append((ids[d], h))
            else:
                kept.setdefault(h, ids[d])
    for doc_id, h in pending:
        dup_of[doc_id] = kept.get(h)
    tmp = Path(str(out_path) + ".tmp")
    tmp.write_text(json.dumps(dup_of))
    tmp.replace(out_path)
    return len(dup_of)
