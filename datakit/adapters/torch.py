"""A built mixture as a PyTorch IterableDataset that is also Stateful (exact resume).

    from datakit.adapters.torch import PackedDataset

    ds = PackedDataset("data/mixtures/pretrain", seq_len=2048, rank=rank, world_size=world)
    loader = torch.utils.data.DataLoader(ds, batch_size=8)          # or torchdata's StatefulDataLoader
    for batch in loader:                                           # input_ids, labels, position_ids: [8, 2048]
        logits = model(batch["input_ids"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())   # labels are already shifted
    torch.save({"model": ..., "data": ds.state_dict()}, "ckpt.pt")  # resume: ds.load_state_dict(ckpt["data"])

Rows come from the contract's cursors (datakit.contract.cursors): `PackedDataset` packs documents into
windows of seq_len (input, label) pairs; `ExampleDataset` gives one SFT / DPO example per row with its
role and reference log-prob (the phase-3 rows). Readers are sharded by `rank` / `world_size` and, inside a
DataLoader, by worker: reader `rank * num_workers + worker` of `world_size * num_workers`. With workers,
resume through torchdata's StatefulDataLoader (it keeps each worker's state).

style: "torch" -> {"input_ids", "labels", "position_ids"} (labels shifted, IGNORE_INDEX = -100 where no loss);
"hf" -> {"input_ids", "labels", "shift_labels"} for transformers' causal LMs (their loss uses shift_labels
as given instead of shifting labels again); "titan" -> ({"input", "positions"}, labels), TorchTitan's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint.stateful import Stateful
from torch.utils.data import IterableDataset, get_worker_info

from datakit.contract.cursors import Cursor, ExampleCursor, PackedCursor
from datakit.contract.manifest import Manifest
from datakit.contract.reader import Mixture, open_mixture

STYLES = ("torch", "hf", "titan")


class CursorDataset(IterableDataset, Stateful):
    """The base: opens the mixture once, builds this reader's cursor, delegates state to it."""

    def __init__(self, mixture: str | os.PathLike | Mixture, *, rank: int = 0, world_size: int = 1, verify: bool = True,
                 manifest: Manifest | None = None, style: str = "torch"):
        if style not in STYLES:
            raise ValueError(f"style {style!r} is not one of {STYLES}")
        if isinstance(mixture, Mixture):
            self.mixture = mixture
        elif manifest is not None:  # already loaded (and checked) by the caller
            self.mixture = Mixture(mixture, manifest)
        else:
            self.mixture = open_mixture(mixture, verify=verify)
        self.folder: Path = self.mixture.folder
        self.manifest: Manifest = self.mixture.manifest
        self.rank, self.world_size, self.style = rank, world_size, style
        self._reader: tuple[int, int] | None = None
        self.cursor: Cursor = self._ensure_cursor()

    # -- variants implement these -----------------------------------------------------------
    def make_cursor(self, rank: int, world_size: int) -> Cursor:
        raise NotImplementedError

    def item(self, row) -> Any:
        raise NotImplementedError

    # -- reader placement ---------------------------------------------------------------------
    def _ensure_cursor(self) -> Cursor:
        info = get_worker_info()
        n, w = (info.num_workers, info.id) if info is not None else (1, 0)
        reader = (self.rank * n + w, self.world_size * n)
        if reader != self._reader:
            self.cursor, self._reader = self.make_cursor(*reader), reader
        return self.cursor

    def __iter__(self):
        cursor = self._ensure_cursor()
        for row in cursor:
            yield self.item(row)

    @property
    def epoch(self) -> int:
        """Epochs completed by this reader (0 during the first pass)."""
        return self._ensure_cursor().epoch

    # -- Stateful -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return self._ensure_cursor().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ensure_cursor().load_state_dict(state)


class PackedDataset(CursorDataset):
    """Packed windows of `seq_len` (input, label) pairs from every source (default seq_len: the manifest's).

    infinite: start a new epoch when the mixture is read to the end (False: stop). document_masking: positions
    restart at every document (False: 0..seq_len-1 per row, for plain causal attention across documents)."""

    def __init__(self, mixture: str | os.PathLike | Mixture, *, seq_len: int | None = None, infinite: bool = True,
                 document_masking: bool = True, **kw):
        self.seq_len, self.infinite, self.document_masking = seq_len, infinite, document_masking
        super().__init__(mixture, **kw)

    def make_cursor(self, rank: int, world_size: int) -> PackedCursor:
        return PackedCursor(self.mixture, self.seq_len or self.mixture.seq_len, rank=rank, world_size=world_size, infinite=self.infinite,
                            document_masking=self.document_masking)

    def next_row(self):
        """The next window (inputs, labels, positions) as numpy arrays; None when the data ran out."""
        return self._ensure_cursor().next_window()

    def item(self, row):
        inputs, labels, positions = (torch.from_numpy(x) for x in row)
        if self.style == "titan":
            return {"input": inputs, "positions": positions}, labels
        if self.style == "hf":
            return {"input_ids": inputs, "labels": labels, "shift_labels": labels}
        return {"input_ids": inputs, "labels": labels, "position_ids": positions}


class ExampleDataset(CursorDataset):
    """SFT / DPO example rows (datakit.contract.cursors.ExampleCursor): one example per row, right-padded to
    seq_len, with role, pair_id and ref_logps; batch_rows = the loader's batch size (pairs stay whole)."""

    def __init__(self, mixture: str | os.PathLike | Mixture, *, seq_len: int | None = None, batch_rows: int = 2, pairs: bool = True,
                 pairs_only: bool = False, refs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, infinite: bool = True,
                 where: str | None = None, **kw):
        self.seq_len, self.batch_rows, self.pairs, self.pairs_only = seq_len, batch_rows, pairs, pairs_only
        self.refs, self.infinite, self.where = refs, infinite, where
        super().__init__(mixture, **kw)

    def make_cursor(self, rank: int, world_size: int) -> ExampleCursor:
        return ExampleCursor(self.mixture, self.seq_len or self.mixture.seq_len, batch_rows=self.batch_rows, pairs=self.pairs,
                             pairs_only=self.pairs_only, rank=rank, world_size=world_size, refs=self.refs, infinite=self.infinite,
                             where=self.where)

    def next_row(self) -> dict[str, Any] | None:
        return self._ensure_cursor().next_row()

    def item(self, row: dict[str, Any]):
        extra = {"role": torch.tensor(row["role"], dtype=torch.int64), "pair_id": torch.tensor(row["pair_id"], dtype=torch.int64),
                 "ref_logps": torch.tensor(row["ref_logps"], dtype=torch.float32)}
        inputs, labels, positions = (torch.from_numpy(row[k]) for k in ("inputs", "labels", "positions"))
        if self.style == "titan":
            return {"input": inputs, "positions": positions, **extra}, labels
        if self.style == "hf":
            return {"input_ids": inputs, "labels": labels, "shift_labels": labels, **extra}
        return {"input_ids": inputs, "labels": labels, "position_ids": positions, **extra}
