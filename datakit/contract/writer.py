"""Write shards and a manifest (Contract 2) from token ids: for shards made by another tool, and tests.

    from datakit.contract.writer import write_mixture
    m = write_mixture("out/mix", {"web": [[1, 5, 9, 2], [1, 7, 2]]}, vocab_size=65_536, seq_len=2048)

`datakit mix build` writes mixtures itself (datakit.mix.write); this writes the same file format, with
the token size the uint16 rule gives for `vocab_size` (datakit.contract.manifest.token_size_for_vocab).
An accounting.duckdb is not written here (datakit.accounting.db.write_accounting_from_shards adds one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from datakit.contract.manifest import Manifest, Shard, SourceEntry, TokenizerInfo, sha256_file, token_size_for_vocab, write_manifest
from datakit.contract.shards import token_dtype


def write_shard(path: str | os.PathLike, docs: Sequence[Sequence[int]], token_size_bytes: int,
                loss_masks: Sequence[Sequence[int]] | None = None) -> Shard:
    """One `.ds` (+ `.ds.index`, + `.ds.loss` when loss_masks are given) with its manifest entry; path relative
    names are kept as given (the caller makes them relative to the mixture folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(token_size_bytes)
    limit = np.iinfo(dtype).max
    flat = np.concatenate([np.asarray(d, np.int64) for d in docs]) if docs else np.zeros(0, np.int64)
    if len(flat) and (flat.min() < 0 or flat.max() > limit):
        raise ValueError(f"token id {int(flat.max())} does not fit {token_size_bytes} bytes (max {limit})")
    path.write_bytes(flat.astype(dtype).tobytes())
    ends = np.cumsum([len(d) for d in docs]).astype("<u8")
    Path(f"{path}.index").write_bytes(ends.tobytes())
    loss_sha = None
    if loss_masks is not None:
        Path(f"{path}.loss").write_bytes(np.concatenate([np.asarray(m, np.uint8) for m in loss_masks]).tobytes())
        loss_sha = sha256_file(f"{path}.loss")
    return Shard(path=str(path), size_bytes=path.stat().st_size, sha256=sha256_file(path), n_tokens=len(flat), n_docs=len(docs),
                 index_sha256=sha256_file(f"{path}.index"), loss_sha256=loss_sha)


def write_mixture(folder: str | os.PathLike, sources: dict[str, Sequence[Sequence[int]]], *, vocab_size: int, seq_len: int,
                  loss_masks: dict[str, Sequence[Sequence[int]]] | None = None, layouts: dict[str, str] | None = None,
                  docs_per_shard: int = 1 << 30, name: str = "mixture", seed: int = 0, tokenizer_path: str = "tokenizer.json",
                  tokenizer_sha256: str = "0" * 64, datakit_version: str = "external") -> Manifest:
    """Shards of every source (`<s> ... </s>` documents as token id lists) and the manifest; returns the manifest."""
    folder = Path(folder)
    size = token_size_for_vocab(vocab_size)
    entries = []
    for src, docs in sources.items():
        masks = (loss_masks or {}).get(src)
        shards = []
        for k, a in enumerate(range(0, max(len(docs), 1), docs_per_shard)):
            part = list(docs[a : a + docs_per_shard])
            if not part:
                break
            rel = Path("tokens") / src / f"{src}-{k:05d}.ds"
            sh = write_shard(folder / rel, part, size, list(masks[a : a + docs_per_shard]) if masks is not None else None)
            shards.append(sh.model_copy(update={"path": rel.as_posix()}))
        n_tokens = sum(s.n_tokens for s in shards)
        entries.append(SourceEntry(name=src, uri=f"file://{src}", format="text", docs_available=len(docs), tokens_available=n_tokens,
                                   tokens_target=n_tokens, tokens_written=n_tokens, docs_written=len(docs), epochs=1.0, weight=0.0,
                                   shards=shards, layout=(layouts or {}).get(src, "docs")))
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total if total else 0.0
    manifest = Manifest(name=name, seq_len=seq_len, seed=seed, spec={"mixture": {"name": name}}, spec_sha256="0" * 64,
                        tokenizer=TokenizerInfo(path=tokenizer_path, sha256=tokenizer_sha256, vocab_size=vocab_size, token_size_bytes=size),
                        sources=entries, total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version=datakit_version)
    write_manifest(folder, manifest)
    return manifest
