"""The one reader of a built mixture (Contract 2): the manifest and every source's documents; the cursors
(datakit.contract.cursors) make packed windows and example rows out of them.

    from datakit.contract import PackedCursor, open_mixture

    mix = open_mixture("data/mixtures/smoke")          # manifest + sha256 check (verify=False: skip it)
    for doc in mix.source("gsm8k").documents():         # Document(tokens, loss_mask)
        ...
    cursor = PackedCursor(mix, seq_len=256, rank=0, world_size=1)
    inputs, labels, positions = cursor.next_window()     # seq_len (input, label) pairs; see datakit.contract.cursors
    state = cursor.state_dict()                         # a few integers: resume exactly here with load_state_dict

Every source's documents are indexed once, here (`SourceDocs`): shards are memory-mapped with their
`.ds.index`, so opening a mixture of any size costs O(shards) memory, and every consumer (datakit's
accounting, the engine, export, a user's train.py) reads the same documents the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Literal, NamedTuple

import numpy as np

from datakit.contract.layouts import IGNORE_INDEX
from datakit.contract.manifest import MANIFEST_NAME, Manifest, SourceEntry, load_manifest
from datakit.contract.shards import read_shard
from datakit.contract.verify import verify_mixture
from datakit.errors import UserError


class Document(NamedTuple):
    tokens: np.ndarray  # `<s> ... </s>`, the manifest's token dtype (memory-mapped view)
    loss_mask: np.ndarray | None  # uint8 0/1 per token where the shard has a `.ds.loss`, else None (loss everywhere)


class ShardDocs:
    """The documents of an ordered list of shards, as one list: document i is document i - doc_offset[k] of
    shard k. The one per-document index of datakit (the builder's pools, the engine, export, adapters)."""

    def __init__(self, paths: list[str | os.PathLike], token_size_bytes: int):
        self.paths = [Path(p) for p in paths]
        self.tokens: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.loss: list[np.ndarray | None] = []
        offsets = [0]
        for path in self.paths:
            toks, ends, loss = read_shard(path, token_size_bytes)
            self.tokens.append(toks)
            self.ends.append(ends)
            self.loss.append(loss)
            offsets.append(offsets[-1] + len(ends))
        self.doc_offset = np.asarray(offsets, np.int64)

    @property
    def n_docs(self) -> int:
        return int(self.doc_offset[-1])

    @property
    def has_loss(self) -> bool:
        return any(x is not None for x in self.loss)

    def __len__(self) -> int:
        return self.n_docs

    def locate(self, i: int) -> tuple[int, int, int]:
        """(shard, first token, end token) of document i."""
        if not 0 <= i < self.n_docs:
            raise IndexError(f"document {i} of {self.n_docs}")
        k = int(np.searchsorted(self.doc_offset, i, side="right")) - 1
        j = i - int(self.doc_offset[k])
        ends = self.ends[k]
        return k, (int(ends[j - 1]) if j else 0), int(ends[j])

    def doc(self, i: int) -> Document:
        k, a, b = self.locate(i)
        loss = self.loss[k]
        return Document(self.tokens[k][a:b], loss[a:b] if loss is not None else None)

    def length(self, i: int) -> int:
        _, a, b = self.locate(i)
        return b - a

    def lengths(self) -> np.ndarray:
        """Tokens of every document (int64, O(documents) memory: for phase-3 sized sources and reports)."""
        out = [np.diff(np.concatenate([[0], e.astype(np.int64)])) for e in self.ends]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def documents(self, start: int = 0, stop: int | None = None, *, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        """Documents start, start + 1, ... (of those with index % world_size == rank), shard by shard."""
        stop = self.n_docs if stop is None else min(stop, self.n_docs)
        first = start + (rank - start) % world_size
        for i in range(first, stop, world_size):
            yield self.doc(i)


class SourceDocs(ShardDocs):
    """One source of a built mixture: its shards' documents, in manifest order, with name, layout and weight."""

    def __init__(self, folder: Path, entry: SourceEntry, token_size_bytes: int):
        super().__init__([Path(folder) / sh.path for sh in entry.shards], token_size_bytes)
        self.name, self.layout, self.weight, self.entry = entry.name, entry.layout, entry.weight, entry


class Mixture:
    """A built mixture opened for reading: the manifest and every source's documents."""

    def __init__(self, folder: str | os.PathLike, manifest: Manifest):
        self.folder, self.manifest = Path(folder), manifest
        size = manifest.tokenizer.token_size_bytes
        self.sources = [SourceDocs(self.folder, e, size) for e in manifest.sources]

    @property
    def seq_len(self) -> int:
        """The seq_len the mixture was built for (SFT / DPO examples fit it)."""
        return self.manifest.seq_len

    @property
    def vocab_size(self) -> int:
        return self.manifest.tokenizer.vocab_size

    def source(self, name: str) -> SourceDocs:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source {name!r} in {self.folder} (sources: {', '.join(s.name for s in self.sources)})")

    def documents(self) -> Iterator[tuple[str, Document]]:
        """(source name, document) for every document, source by source in manifest order."""
        for s in self.sources:
            for d in s.documents():
                yield s.name, d


def open_mixture(folder: str | os.PathLike, *, verify: bool | Literal["quick"] = True, manifest: Manifest | None = None) -> Mixture:
    """Open a built mixture. verify: True checks every file's size and sha256, shard structure and the
    accounting totals against the manifest (IntegrityError lists what is bad); "quick" checks sizes only;
    False skips it (shard structure is still checked on open). A mixture without tokens is a UserError."""
    folder = Path(folder)
    manifest = manifest or load_manifest(folder)
    if verify:
        verify_mixture(folder, quick=verify == "quick", manifest=manifest).raise_if_bad()
    if not any(sh.n_tokens for src in manifest.sources for sh in src.shards):
        raise UserError("mixture has no tokens", file=folder / MANIFEST_NAME, fix="rebuild it with sources that yield documents")
    return Mixture(folder, manifest)


__all__ = ["Document", "ShardDocs", "SourceDocs", "Mixture", "open_mixture", "IGNORE_INDEX"]
