"""Shard files of a built mixture (Contract 2), in datatrove's tokenized format:

    <name>.ds         the tokens, little-endian, `token_size_bytes` each (the manifest's tokenizer says which:
                      2 for a vocabulary of up to 65,536 entries, 4 above; datakit.contract.manifest)
    <name>.ds.index   little-endian uint64 cumulative document ends, in tokens (document i is
                      tokens[ends[i-1]:ends[i]], ends[-1] = number of tokens)
    <name>.ds.loss    optional: one byte (0 or 1) per token; 0 = no loss on predicting this token

`read_shard` memory-maps one shard and checks its structure on every open (O(documents)), so even an
unverified read never trains on a broken index.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from datakit.errors import IntegrityError

INDEX_ENTRY_BYTES = 8  # one little-endian uint64 document end per document
REBUILD_FIX = "rebuild the mixture: `datakit mix build <spec.toml>` (`datakit verify <mixture>` lists every bad file)"


def token_dtype(manifest_or_size) -> np.dtype:
    """The numpy dtype of a shard's tokens: from a Manifest, or from token_size_bytes (2 or 4)."""
    size = manifest_or_size if isinstance(manifest_or_size, int) else manifest_or_size.tokenizer.token_size_bytes
    if size not in (2, 4):
        raise ValueError(f"token_size_bytes must be 2 or 4, not {size}")
    return np.dtype("<u2") if size == 2 else np.dtype("<u4")


def structure_problems(n_tokens: int, doc_ends: np.ndarray, loss_len: int | None) -> list[str]:
    """What is wrong with a shard's index / loss mask for a token file of `n_tokens` tokens ([] if nothing).

    doc_ends: the `.ds.index` (cumulative document ends). loss_len: length of the `.ds.loss`, None if absent.
    O(documents): cheap enough for every open."""
    out = []
    if len(doc_ends):
        ends = doc_ends.astype(np.int64)
        bad = np.flatnonzero(np.diff(np.concatenate([[0], ends])) <= 0)
        if len(bad):
            out.append(f"document ends are not strictly increasing (first at document {int(bad[0])}: end {int(ends[bad[0]])})")
        if int(ends[-1]) != n_tokens:
            out.append(f"the last document ends at token {int(ends[-1]):,} but the shard has {n_tokens:,} tokens")
    elif n_tokens:
        out.append(f"{n_tokens:,} tokens but an empty document index")
    if loss_len is not None and loss_len != n_tokens:
        out.append(f"the loss mask has {loss_len:,} entries for {n_tokens:,} tokens")
    return out


def read_shard(path: str | os.PathLike, token_size_bytes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Memory-map one shard: (tokens, doc_ends, loss_mask or None). doc_ends[i] is the end of doc i in tokens.

    The index and loss mask are checked against the token count on every open (IntegrityError if broken)."""
    path = Path(path)
    index_path, loss_path = Path(f"{path}.index"), Path(f"{path}.loss")

    def damaged(what: str, where: Path) -> IntegrityError:
        return IntegrityError(f"shard is damaged: {what}", file=where, fix=REBUILD_FIX)

    for p in (path, index_path):
        if not p.exists():
            raise damaged("file is missing", p)
    dtype = token_dtype(token_size_bytes)
    size, index_size = path.stat().st_size, index_path.stat().st_size
    if size % token_size_bytes or index_size % INDEX_ENTRY_BYTES:
        raise damaged(f"{size:,} token bytes / {index_size:,} index bytes are not whole tokens / document ends", path)
    tokens = np.memmap(path, dtype=dtype, mode="r") if size else np.zeros(0, dtype)
    # memory-mapped: a process (or every rank on a node) holds only the index pages it touches
    doc_ends = np.memmap(index_path, dtype="<u8", mode="r") if index_size else np.zeros(0, "<u8")
    loss = np.memmap(loss_path, dtype=np.uint8, mode="r") if loss_path.exists() and loss_path.stat().st_size else None
    problems = structure_problems(len(tokens), doc_ends, len(loss) if loss is not None else (0 if loss_path.exists() else None))
    if problems:
        raise damaged("; ".join(problems), path)
    return tokens, doc_ends, loss
