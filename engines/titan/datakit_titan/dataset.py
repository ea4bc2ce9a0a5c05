"""Contract 2 -> TorchTitan batches: a Stateful IterableDataset over a built mixture's shards.

What one rank sees:
- every source is one long list of documents (its shards in manifest order); data-parallel rank r
  of W reads documents r, r+W, r+2W, ... of every source, so ranks never share a document;
- the next document comes from the source furthest behind its manifest share of the tokens read
  so far (a deterministic token-deficit round robin: shares are exact to within one document);
- documents are packed back to back into rows of `seq_len` (input, label) pairs. Inputs are
  doc[:-1] and labels doc[1:] *within* a document, so `</s>` is never asked to predict the next
  document's `<s>`; positions restart at 0 at every document start (and at the start of a row
  when a document carries over), which is what TorchTitan's block-causal masks key on.
- where a `.ds.loss` mask exists, labels of tokens with mask 0 become IGNORE_INDEX (-100).

State is a few integers (per-source cursor and tokens read, the document in progress and the
offset inside it, the epoch), so a resumed run continues from exactly the next token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint.stateful import Stateful
from torch.utils.data import IterableDataset

from datakit.errors import UserError
from datakit.contract import Manifest, load_manifest, read_shard, verify_mixture

IGNORE_INDEX = -100  # torchtitan.components.loss.IGNORE_INDEX


@dataclass
class _Source:
    """One source's documents as seen by this rank."""

    name: str
    weight: float
    tokens: list[np.ndarray]  # per shard, memory-mapped
    loss: list[np.ndarray | None]  # per shard, memory-mapped 0/1 mask or None
    shard_of_doc: np.ndarray  # rank-local doc -> shard index
    start_of_doc: np.ndarray  # rank-local doc -> first token in its shard
    end_of_doc: np.ndarray  # rank-local doc -> end token (exclusive) in its shard

    @property
    def n_docs(self) -> int:
        return len(self.shard_of_doc)

    def doc(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        s = int(self.shard_of_doc[i])
        a, b = int(self.start_of_doc[i]), int(self.end_of_doc[i])
        loss = self.loss[s]
        return self.tokens[s][a:b], (loss[a:b] if loss is not None else None)


def open_mixture(folder: str | os.PathLike, *, verify: bool = True) -> Manifest:
    """Load a built mixture's manifest and (by default) verify it: every listed file's size and sha256,
    shard structure and accounting totals (datakit.contract.verify); IntegrityError lists what is bad."""
    manifest = load_manifest(folder)
    if verify:
        verify_mixture(folder, manifest=manifest).raise_if_bad()
    if not any(sh.n_tokens for src in manifest.sources for sh in src.shards):
        raise UserError("mixture has no tokens", file=Path(folder) / "manifest.json", fix="rebuild it with sources that yield documents")
    return manifest


def _load_source(folder: Path, manifest: Manifest, index: int, dp_rank: int, dp_world_size: int) -> _Source:
    """This rank's documents of one source: global documents r, r+W, r+2W, ... (only those are
    indexed, so host memory per rank is 1/W of the source's index)."""
    src = manifest.sources[index]
    tokens, losses, shard_ids, starts, ends = [], [], [], [], []
    first_doc = 0  # global index of the shard's first document within the source
    for k, shard in enumerate(src.shards):
        toks, doc_ends, loss = read_shard(folder / shard.path, manifest.tokenizer.token_size_bytes)
        tokens.append(toks)
        losses.append(loss)
        doc_ends = doc_ends.astype(np.int64)
        mine = np.arange((dp_rank - first_doc) % dp_world_size, len(doc_ends), dp_world_size)
        doc_starts = np.concatenate([[0], doc_ends[:-1]])
        shard_ids.append(np.full(len(mine), k, dtype=np.int32))
        starts.append(doc_starts[mine])
        ends.append(doc_ends[mine])
        first_doc += len(doc_ends)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return _Source(src.name, src.weight, tokens, losses, cat(shard_ids, np.int32), cat(starts, np.int64), cat(ends, np.int64))


class MixtureDataset(IterableDataset, Stateful):
    """Packed (input, label, positions) rows of `seq_len` from a built mixture, for one DP rank.

    folder: the built mixture (Contract 2). seq_len: tokens per row. dp_rank / dp_world_size: this
    rank's place among data-parallel ranks. infinite: start a new epoch when every source is read
    (False: stop). verify: check shard sha256 before reading (skip only when already checked).
    document_masking: positions restart at every document start (TorchTitan's attention masks keep
    attention inside documents); False: positions 0..seq_len-1 per row, plain causal attention across
    the packed documents (labels still never cross a document end).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        seq_len: int,
        dp_rank: int = 0,
        dp_world_size: int = 1,
        infinite: bool = True,
        verify: bool = True,
        manifest: Manifest | None = None,
        document_masking: bool = True,
    ):
        self.folder = Path(folder)
        self.manifest = manifest or open_mixture(self.folder, verify=verify)
        self.seq_len = seq_len
        self.infinite = infinite
        self.document_masking = document_masking
        loaded = [_load_source(self.folder, self.manifest, i, dp_rank, dp_world_size) for i in range(len(self.manifest.sources))]
        self.sources = [s for s in loaded if s.n_docs]
        if not self.sources:
            raise UserError(
                f"no documents for data-parallel rank {dp_rank} of {dp_world_size}",
                file=self.folder,
                fix="use fewer ranks or a larger mixture",
            )
        w = np.array([s.weight for s in self.sources], dtype=np.float64)
        self.weights = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
        self._reset_epoch()
        self.epoch = 0
        self.current: tuple[int, int] | None = None  # (source, rank-local doc) being read
        self.offset = 0  # pairs of `current` already emitted

    # -- document order ---------------------------------------------------------------------
    def _reset_epoch(self) -> None:
        self.cursor = [0] * len(self.sources)  # next rank-local doc per source
        self.tokens_read = [0] * len(self.sources)  # tokens taken per source this epoch

    def _next_document(self) -> tuple[int, int] | None:
        """Pick the source furthest behind its share; None when every source is read this epoch."""
        total = sum(self.tokens_read)
        best, best_deficit = None, None
        for i, src in enumerate(self.sources):
            if self.cursor[i] >= src.n_docs:
                continue
            deficit = self.weights[i] * total - self.tokens_read[i]
            if best is None or deficit > best_deficit:
                best, best_deficit = i, deficit
        if best is None:
            return None
        doc = self.cursor[best]
        self.cursor[best] += 1
        src = self.sources[best]
        self.tokens_read[best] += int(src.end_of_doc[doc] - src.start_of_doc[doc])
        return best, doc

    # -- packing ----------------------------------------------------------------------------
    def next_row(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """One row: (inputs, labels, positions), int64 arrays of seq_len; None when data ran out."""
        L = self.seq_len
        inputs = np.empty(L, dtype=np.int64)
        labels = np.empty(L, dtype=np.int64)
        positions = np.empty(L, dtype=np.int64)
        filled = 0
        while filled < L:
            if self.current is None:
                nxt = self._next_document()
                if nxt is None:
                    if not self.infinite:
                        return None
                    self.epoch += 1
                    self._reset_epoch()
                    continue
                self.current, self.offset = nxt, 0
            tokens, loss = self.sources[self.current[0]].doc(self.current[1])
            n_pairs = len(tokens) - 1
            take = min(n_pairs - self.offset, L - filled)
            if take > 0:
                a = self.offset
                inputs[filled : filled + take] = tokens[a : a + take]
                labels[filled : filled + take] = tokens[a + 1 : a + 1 + take]
                if loss is not None:
                    masked = loss[a + 1 : a + 1 + take] == 0
                    labels[filled : filled + take][masked] = IGNORE_INDEX
                positions[filled : filled + take] = np.arange(take)
                filled += take
                self.offset += take
            if self.offset >= n_pairs:
                self.current = None
        if not self.document_masking:
            positions[:] = np.arange(L)
        return inputs, labels, positions

    def __iter__(self):
        while (row := self.next_row()) is not None:
            inputs, labels, positions = row
            yield {"input": torch.from_numpy(inputs), "positions": torch.from_numpy(positions)}, torch.from_numpy(labels)

    # -- Stateful ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.name for s in self.sources],
            "cursor": list(self.cursor),
            "tokens_read": list(self.tokens_read),
            "current": list(self.current) if self.current is not None else None,
            "offset": self.offset,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["sources"]) != [s.name for s in self.sources]:
            raise UserError(
                f"checkpoint was written for sources {state['sources']}, this mixture has {[s.name for s in self.sources]}",
                file=self.folder,
                fix="resume on the mixture the run started with, or start a new output folder",
            )
        self.cursor = [int(x) for x in state["cursor"]]
        self.tokens_read = [int(x) for x in state["tokens_read"]]
        self.current = tuple(int(x) for x in state["current"]) if state["current"] is not None else None
        self.offset = int(state["offset"])
        self.epoch = int(state["epoch"])
