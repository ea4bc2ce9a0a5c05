"""Phase-3 rows: a Stateful IterableDataset over a mixture's SFT, DPO-pair and plain sources.

Every row is one example (never packed with another), right-padded to `seq_len`:

    input      <s> [context <sep>] prompt completion      then pad id 0
    labels     the next token where `.ds.loss` is 1 (completion + </s>), IGNORE_INDEX elsewhere
    positions  0..n-1 over the example, then 0..   over the padding (its own block-causal document)
    role       ROLE_SFT | ROLE_CHOSEN | ROLE_REJECTED | ROLE_PAD   (datakit_titan.prefs.loss)
    pair_id    source index << 32 | pair index within the source; -1 for rows that are not a pair
    ref_logps  the reference model's sequence log-prob of this row's completion (pairs; 0 elsewhere)

Layouts (the manifest's `layout` per source, written by datakit.mix.examples):
    sft        one document = one row
    dpo_pairs  documents 2i, 2i+1 = chosen, rejected of pair i: two adjacent rows that always land in
               the same batch (a pair is never split by a batch boundary: the last slot of a batch goes
               to a single-row source, or a padding row when none is left)
    docs       plain documents (mixed in for length): cut into rows of seq_len, loss on every token

What one data-parallel rank reads: units (documents, pairs) r, r+W, r+2W, ... of every source, so a
pair is never split across ranks. The next unit comes from the source furthest behind its manifest
token share (the same deterministic round robin as `datakit_titan.dataset`). The state is a few
integers, so a resumed run continues with exactly the next row.
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
from datakit_titan.prefs.loss import IGNORE_INDEX, NEEDS_PAIRS, NEEDS_REFERENCE, ROLE_CHOSEN, ROLE_PAD, ROLE_REJECTED, ROLE_SFT

LAYOUTS = ("docs", "sft", "dpo_pairs")


@dataclass
class SourceDocs:
    """All documents of one source (every rank's), memory-mapped."""

    name: str
    layout: str
    weight: float
    tokens: list[np.ndarray]
    loss: list[np.ndarray | None]
    shard_of: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def doc(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, a, b = int(self.shard_of[i]), int(self.start[i]), int(self.end[i])
        loss = self.loss[s]
        return np.asarray(self.tokens[s][a:b]), (np.asarray(loss[a:b]) if loss is not None else np.ones(b - a, np.uint8))

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start


def read_source(folder: Path, manifest: Manifest, index: int) -> SourceDocs:
    src = manifest.sources[index]
    tokens, losses, shard_ids, starts, ends = [], [], [], [], []
    for k, shard in enumerate(src.shards):
        toks, doc_ends, loss = read_shard(folder / shard.path, manifest.tokenizer.token_size_bytes)
        doc_ends = doc_ends.astype(np.int64)
        tokens.append(toks)
        losses.append(loss)
        shard_ids.append(np.full(len(doc_ends), k, np.int32))
        starts.append(np.concatenate([[0], doc_ends[:-1]]).astype(np.int64))
        ends.append(doc_ends)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    layout = src.layout
    if layout not in LAYOUTS:
        raise UserError(f"source {src.name!r} has unknown layout {layout!r}", file=folder / "manifest.json", fix="rebuild the mixture with this datakit")
    return SourceDocs(src.name, layout, src.weight, tokens, losses, cat(shard_ids, np.int32), cat(starts, np.int64), cat(ends, np.int64))


def example_row(tokens: np.ndarray, loss: np.ndarray, seq_len: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example -> (input, labels, positions), int64 arrays of seq_len (labels already shifted)."""
    tokens = np.asarray(tokens, np.int64)
    n = len(tokens) - 1
    if n > seq_len:
        raise ValueError(f"example of {len(tokens)} tokens does not fit seq_len {seq_len}")
    inputs = np.full(seq_len, pad_id, np.int64)
    labels = np.full(seq_len, IGNORE_INDEX, np.int64)
    inputs[:n] = tokens[:-1]
    labels[:n] = np.where(loss[1:] != 0, tokens[1:], IGNORE_INDEX)
    positions = np.concatenate([np.arange(n), np.arange(seq_len - n)]).astype(np.int64)
    return inputs, labels, positions


class PairDataset(IterableDataset, Stateful):
    """Fixed-length example rows for SFT + DPO training, for one data-parallel rank.

    folder: the built mixture. seq_len: tokens per row (an example longer than seq_len + 1 tokens is an
    error). batch_rows: rows per micro-batch (the local batch size): pairs never straddle a batch.
    loss: "sft_dpo" | "sft" | "dpo" | "orpo" (which rows are needed; "sft" trains on the chosen half of
    pairs only). reference: the checkpoint the reference log-probs must come from, as
    `datakit_titan.prefs.refscore.expected_reference(...)` returns; None checks the data and
    tokenizer hashes only. infinite: start a new epoch at the end (False: stop).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        seq_len: int,
        batch_rows: int,
        dp_rank: int = 0,
        dp_world_size: int = 1,
        loss: str = "sft_dpo",
        reference: dict | None = None,
        infinite: bool = True,
        verify: bool = True,
        manifest: Manifest | None = None,
        phase_file: str | None = None,
    ):
        self.folder = Path(folder)
        self.manifest = manifest or load_manifest(self.folder)
        if verify and manifest is None:
            verify_mixture(self.folder, manifest=self.manifest).raise_if_bad()
        self.seq_len, self.batch_rows, self.loss, self.infinite = seq_len, batch_rows, loss, infinite
        self.pad_id = self.manifest.tokenizer.pad_id
        where = phase_file or str(self.folder / "manifest.json")
        self.pairs = loss in NEEDS_PAIRS
        all_sources = [read_source(self.folder, self.manifest, i) for i in range(len(self.manifest.sources))]
        # loss = "dpo" trains on pairs only: SFT and plain rows would cost compute and add nothing
        keep = [len(s.start) > 0 and (loss != "dpo" or s.layout == "dpo_pairs") for s in all_sources]
        self.sources = [s for s, k in zip(all_sources, keep) if k]
        self.source_index = [i for i, k in enumerate(keep) if k]
        if self.pairs and not any(s.layout == "dpo_pairs" for s in self.sources) or not self.sources:
            raise UserError(f"loss {loss!r} needs DPO pairs but the mixture has no `dpo` source", file=where, field="phase.loss",
                            fix="add a source with format = \"dpo\" to the mixture, or use loss = \"sft\"")
        if self.pairs and batch_rows < 2:
            raise UserError(f"batch.per_gpu = {batch_rows} cannot hold a chosen + rejected pair", file=where, field="batch.per_gpu", fix="use at least 2")
        # units of this rank: per source, lists of global document indices
        self.units: list[np.ndarray] = []  # [n_units, 1 or 2] document ids
        self.unit_tokens: list[np.ndarray] = []
        for s in self.sources:
            if s.layout == "dpo_pairs":
                if len(s.start) % 2:
                    raise UserError(f"DPO source {s.name!r} has an odd number of examples", file=self.folder / "manifest.json", fix="rebuild the mixture")
                units = np.arange(len(s.start)).reshape(-1, 2)
                if not self.pairs:
                    units = units[:, :1]  # loss = "sft": the chosen example only
            else:
                units = np.arange(len(s.start)).reshape(-1, 1)
            if s.layout != "docs":
                too_long = np.nonzero(s.lengths - 1 > seq_len)[0]
                if len(too_long):
                    raise UserError(
                        f"{len(too_long)} examples of source {s.name!r} are longer than seq_len {seq_len} "
                        f"(longest {int(s.lengths.max())} tokens)", file=where, field="stage.seq_len",
                        fix=f"use seq_len >= {int(s.lengths.max()) - 1}, or rebuild the mixture with that seq_len",
                    )
            units = units[dp_rank::dp_world_size]
            self.units.append(units)
            self.unit_tokens.append(s.lengths[units].sum(1))
        if not any(len(u) for u in self.units):
            raise UserError(f"no examples for data-parallel rank {dp_rank} of {dp_world_size}", file=self.folder, fix="use fewer ranks or a larger mixture")
        w = np.array([s.weight for s in self.sources], np.float64)
        self.weights = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
        self.refs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if loss in NEEDS_REFERENCE:
            from datakit_titan.prefs.refscore import load_refscores

            for k, s in enumerate(self.sources):
                if s.layout == "dpo_pairs":
                    self.refs[k] = load_refscores(self.folder, self.manifest, s.name, reference=reference, phase_file=phase_file)
        self.epoch = 0
        self.slot = 0  # row index inside the current micro-batch
        self.current: tuple[int, int] | None = None  # (source, rank-local unit) being emitted
        self.offset = 0  # rows of `current` already emitted
        self._reset_epoch()

    # -- order ------------------------------------------------------------------------------
    def _reset_epoch(self) -> None:
        self.cursor = [0] * len(self.sources)
        self.tokens_read = [0] * len(self.sources)

    def _is_pair(self, k: int) -> bool:
        return self.pairs and self.sources[k].layout == "dpo_pairs"

    def _pick(self, single_only: bool) -> tuple[int, int] | None:
        total = sum(self.tokens_read)
        best, best_deficit = None, None
        for k in range(len(self.sources)):
            if self.cursor[k] >= len(self.units[k]) or (single_only and self._is_pair(k)):
                continue
            deficit = self.weights[k] * total - self.tokens_read[k]
            if best is None or deficit > best_deficit:
                best, best_deficit = k, deficit
        if best is None:
            return None
        u = self.cursor[best]
        self.cursor[best] += 1
        self.tokens_read[best] += int(self.unit_tokens[best][u])
        return best, u

    def _n_rows(self, k: int, u: int) -> int:
        s = self.sources[k]
        if s.layout == "docs":
            return max(1, -(-(int(s.lengths[self.units[k][u][0]]) - 1) // self.seq_len))
        return self.units[k].shape[1]

    # -- rows -------------------------------------------------------------------------------
    def _row(self, k: int, u: int, j: int) -> dict[str, Any]:
        s = self.sources[k]
        if s.layout == "docs":
            tokens, loss = s.doc(int(self.units[k][u][0]))
            a = j * self.seq_len
            tokens, loss = tokens[a : a + self.seq_len + 1], loss[a : a + self.seq_len + 1]
            role, pair_id, ref = ROLE_SFT, -1, 0.0
        else:
            d = int(self.units[k][u][j])
            tokens, loss = s.doc(d)
            if self._is_pair(k):
                role = ROLE_CHOSEN if j == 0 else ROLE_REJECTED
                pair = d // 2
                pair_id = (self.source_index[k] << 32) | pair
                ref = float(self.refs[k][j][pair]) if k in self.refs else 0.0
            else:
                role, pair_id, ref = ROLE_SFT, -1, 0.0
        inputs, labels, positions = example_row(tokens, loss, self.seq_len, self.pad_id)
        return {"inputs": inputs, "labels": labels, "positions": positions, "role": role, "pair_id": pair_id, "ref_logps": ref}

    def _pad_row(self) -> dict[str, Any]:
        L = self.seq_len
        return {"inputs": np.full(L, self.pad_id, np.int64), "labels": np.full(L, IGNORE_INDEX, np.int64),
                "positions": np.arange(L, dtype=np.int64), "role": ROLE_PAD, "pair_id": -1, "ref_logps": 0.0}

    def next_row(self) -> dict[str, Any] | None:
        """The next row (numpy arrays + scalars), or None when the data ran out (infinite=False)."""
        last_slot = self.slot == self.batch_rows - 1
        while self.current is None:
            nxt = self._pick(single_only=self.pairs and last_slot)
            if nxt is not None:
                self.current, self.offset = nxt, 0
                break
            if any(self.cursor[k] < len(self.units[k]) for k in range(len(self.sources))):
                self.slot = 0  # only pairs are left and one slot is free: pad it
                return self._pad_row()
            if not self.infinite:
                return None
            self.epoch += 1
            self._reset_epoch()
        k, u = self.current
        row = self._row(k, u, self.offset)
        self.offset += 1
        if self.offset >= self._n_rows(k, u):
            self.current = None
        self.slot = (self.slot + 1) % self.batch_rows
        return row

    def __iter__(self):
        while (row := self.next_row()) is not None:
            yield (
                {
                    "input": torch.from_numpy(row["inputs"]),
                    "positions": torch.from_numpy(row["positions"]),
                    "role": torch.tensor(row["role"], dtype=torch.int64),
                    "pair_id": torch.tensor(row["pair_id"], dtype=torch.int64),
                    "ref_logps": torch.tensor(row["ref_logps"], dtype=torch.float32),
                },
                torch.from_numpy(row["labels"]),
            )

    # -- Stateful ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.name for s in self.sources],
            "cursor": list(self.cursor),
            "tokens_read": list(self.tokens_read),
            "current": list(self.current) if self.current is not None else None,
            "offset": self.offset,
            "slot": self.slot,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["sources"]) != [s.name for s in self.sources]:
            raise UserError(
                f"checkpoint was written for sources {state['sources']}, this mixture has {[s.name for s in self.sources]}",
                file=self.folder, fix="resume on the mixture the run started with, or start a new output folder",
            )
        self.cursor = [int(x) for x in state["cursor"]]
        self.tokens_read = [int(x) for x in state["tokens_read"]]
        self.current = tuple(int(x) for x in state["current"]) if state["current"] is not None else None
        self.offset, self.slot, self.epoch = int(state["offset"]), int(state["slot"]), int(state["epoch"])
