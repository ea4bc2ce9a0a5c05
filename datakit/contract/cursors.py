"""Resumable, rank-sharded cursors over a built mixture: one base, two variants.

`Cursor` (the base) owns what both variants share:
- units: a unit is a document, or a DPO pair (two documents that are never split); reader `rank` of
  `world_size` takes units rank, rank + W, rank + 2W, ... of every source, so readers never share one;
- order: the next unit comes from the source furthest behind its manifest share of the tokens read so
  far (a deterministic token-deficit round robin: shares are exact to within one unit);
- epochs: when every source is read, a new epoch starts (infinite=True) or the cursor ends;
- state: a few integers (per-source cursor and tokens read, the unit in progress and how far into it,
  the epoch), so `load_state_dict(state_dict())` resumes at exactly the next row.

`PackedCursor` packs documents back to back into windows of `seq_len` (input, label) pairs: the
`seq_len + 1` tokens of a document slice give inputs t[:-1] and labels t[1:]. Pairs never cross a
document boundary (`</s>` is never asked to predict the next `<s>`, and no slot is spent on it);
positions restart at 0 at every document start (and at a row start when a document carries over), which
is what block-causal attention keys on; labels of tokens whose `.ds.loss` is 0 are IGNORE_INDEX.

`ExampleCursor` makes one row per SFT / DPO example (never packed), right-padded to seq_len, with a
role; a DPO pair is two adjacent rows that always land in the same batch of `batch_rows` (datakit.contract.layouts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from datakit.contract.layouts import IGNORE_INDEX, PAIR_LAYOUT, ROLE_CHOSEN, ROLE_PAD, ROLE_REJECTED, ROLE_SFT, example_row, is_example_layout
from datakit.contract.reader import Mixture, SourceDocs
from datakit.errors import UserError


class Window(NamedTuple):
    """One packed row: int64 arrays of seq_len (labels already shifted; IGNORE_INDEX where no loss)."""

    inputs: np.ndarray
    labels: np.ndarray
    positions: np.ndarray

    @property
    def loss_mask(self) -> np.ndarray:
        return (self.labels != IGNORE_INDEX).astype(np.uint8)


@dataclass
class Stream:
    """The units of one source that one reader takes: global units first, first + stride, ..."""

    docs: SourceDocs
    unit_docs: int = 1  # documents per unit (2: a DPO pair)
    take: int = 1  # documents of a unit that are read (1 of a pair: its chosen half)
    first: int = 0
    stride: int = 1

    @property
    def n_units(self) -> int:
        total = self.docs.n_docs // self.unit_docs
        return max(0, -(-(total - self.first) // self.stride))

    def global_unit(self, j: int) -> int:
        return self.first + j * self.stride

    def unit(self, j: int) -> range:
        """Source document indices of this reader's unit j."""
        g = self.global_unit(j) * self.unit_docs
        return range(g, g + self.take)

    def unit_tokens(self, j: int) -> int:
        return sum(self.docs.length(d) for d in self.unit(j))


class Cursor:
    """The base: units of several sources in token-deficit round robin order, epochs, state."""

    def __init__(self, streams: list[Stream], *, infinite: bool = True, where: str = ""):
        self.streams, self.infinite, self.where = streams, infinite, where
        w = np.array([s.docs.weight for s in streams], dtype=np.float64)
        self.weights = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
        self.epoch = 0
        self.current: tuple[int, int] | None = None  # (stream, unit) being read
        self.offset = 0  # how far into `current` (pairs of a window, rows of an example unit)
        self._reset_epoch()

    @property
    def source_names(self) -> list[str]:
        return [s.docs.name for s in self.streams]

    def _reset_epoch(self) -> None:
        self.cursor = [0] * len(self.streams)  # next unit per stream
        self.tokens_read = [0] * len(self.streams)  # tokens taken per stream this epoch

    def _left(self, k: int) -> bool:
        return self.cursor[k] < self.streams[k].n_units

    def _pick(self, allowed: Callable[[int], bool] = lambda k: True) -> tuple[int, int] | None:
        """The next unit of the stream furthest behind its share; None when no allowed stream has units left."""
        total = sum(self.tokens_read)
        best, best_deficit = None, None
        for k in range(len(self.streams)):
            if not self._left(k) or not allowed(k):
                continue
            deficit = self.weights[k] * total - self.tokens_read[k]
            if best is None or deficit > best_deficit:
                best, best_deficit = k, deficit
        if best is None:
            return None
        u = self.cursor[best]
        self.cursor[best] += 1
        self.tokens_read[best] += self.streams[best].unit_tokens(u)
        return best, u

    def _new_epoch(self) -> bool:
        """Start the next epoch (True), or say the data ran out (False, infinite=False)."""
        if not self.infinite:
            return False
        self.epoch += 1
        self._reset_epoch()
        return True

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "sources": self.source_names,
            "cursor": list(self.cursor),
            "tokens_read": list(self.tokens_read),
            "current": list(self.current) if self.current is not None else None,
            "offset": self.offset,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["sources"]) != self.source_names:
            raise UserError(
                f"checkpoint was written for sources {state['sources']}, this mixture has {self.source_names}",
                file=self.where, fix="resume on the mixture the run started with, or start a new output folder",
            )
        self.cursor = [int(x) for x in state["cursor"]]
        self.tokens_read = [int(x) for x in state["tokens_read"]]
        self.current = tuple(int(x) for x in state["current"]) if state["current"] is not None else None
        self.offset = int(state["offset"])
        self.epoch = int(state["epoch"])


class PackedCursor(Cursor):
    """Packed windows of `seq_len` (input, label) pairs over every document of a mixture, for one reader.

    rank / world_size: this reader's place among readers (data-parallel ranks x dataloader workers).
    infinite: start a new epoch when every source is read (False: `next_window` returns None).
    document_masking: positions restart at every document (False: 0..seq_len-1 per window, for attention that
    is plain causal across the packed documents; labels still never cross a document end)."""

    def __init__(self, mixture: Mixture, seq_len: int, *, rank: int = 0, world_size: int = 1, infinite: bool = True,
                 document_masking: bool = True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        streams = [Stream(s, first=rank, stride=world_size) for s in mixture.sources]
        streams = [s for s in streams if s.n_units]
        if not streams:
            raise UserError(f"no documents for data-parallel rank {rank} of {world_size}", file=mixture.folder,
                            fix="use fewer ranks or a larger mixture")
        super().__init__(streams, infinite=infinite, where=str(mixture.folder))
        self.seq_len, self.document_masking = seq_len, document_masking

    def next_window(self) -> Window | None:
        """One window: (inputs, labels, positions), int64 arrays of seq_len; None when the data ran out."""
        L = self.seq_len
        inputs = np.empty(L, dtype=np.int64)
        labels = np.empty(L, dtype=np.int64)
        positions = np.empty(L, dtype=np.int64)
        filled = 0
        while filled < L:
            if self.current is None:
                nxt = self._pick()
                if nxt is None:
                    if not self._new_epoch():
                        return None
                    continue
                self.current, self.offset = nxt, 0
            k, u = self.current
            tokens, loss = self.streams[k].docs.doc(self.streams[k].unit(u)[0])
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
        return Window(inputs, labels, positions)

    def __iter__(self):
        while (w := self.next_window()) is not None:
            yield w


class ExampleCursor(Cursor):
    """Fixed-length example rows (SFT, DPO pairs, plain documents cut to seq_len) for one reader.

    Every row is one example, right-padded to seq_len; a dict of inputs, labels, positions (int64 arrays),
    role (ROLE_*), pair_id (source index << 32 | pair index; -1 for rows that are not a pair) and ref_logps
    (the reference model's sequence log-prob of the row's completion, from `refs`; 0 elsewhere).

    batch_rows: rows per batch: a pair never straddles two (the last slot goes to a single-row unit, or a
    padding row when only pairs are left). pairs: read DPO sources as (chosen, rejected) pairs; False reads
    their chosen half only, as SFT rows. pairs_only: read DPO sources only. refs: source name ->
    (chosen log-probs, rejected log-probs) per pair. where: the file named in errors (e.g. a phase file).
    """

    def __init__(self, mixture: Mixture, seq_len: int, *, batch_rows: int = 1, pairs: bool = True, pairs_only: bool = False,
                 rank: int = 0, world_size: int = 1, refs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 infinite: bool = True, where: str | None = None):
        where = where or str(mixture.folder / "manifest.json")
        self.seq_len, self.batch_rows, self.pad_id = seq_len, batch_rows, mixture.manifest.tokenizer.pad_id
        keep = [i for i, s in enumerate(mixture.sources) if s.n_docs > 0 and (not pairs_only or s.layout == PAIR_LAYOUT)]
        self.pairs = pairs and any(mixture.sources[i].layout == PAIR_LAYOUT for i in keep)
        self.source_index = keep  # manifest index of each stream's source (pair ids)
        streams = []
        for i in keep:
            s = mixture.sources[i]
            if s.layout == PAIR_LAYOUT and s.n_docs % 2:
                raise UserError(f"DPO source {s.name!r} has an odd number of examples", file=mixture.folder / "manifest.json", fix="rebuild the mixture")
            if is_example_layout(s.layout):
                lengths = s.lengths()
                too_long = np.nonzero(lengths - 1 > seq_len)[0]
                if len(too_long):
                    raise UserError(
                        f"{len(too_long)} examples of source {s.name!r} are longer than seq_len {seq_len} "
                        f"(longest {int(lengths.max())} tokens)", file=where, field="seq_len",
                        fix=f"use seq_len >= {int(lengths.max()) - 1}, or rebuild the mixture with that seq_len",
                    )
            pair = s.layout == PAIR_LAYOUT
            streams.append(Stream(s, unit_docs=2 if pair else 1, take=2 if pair and pairs else 1, first=rank, stride=world_size))
        if not any(st.n_units for st in streams):
            raise UserError(f"no examples for data-parallel rank {rank} of {world_size}", file=mixture.folder, fix="use fewer ranks or a larger mixture")
        self.refs = {k: refs[st.docs.name] for k, st in enumerate(streams) if refs and st.docs.name in refs}
        super().__init__(streams, infinite=infinite, where=str(mixture.folder))
        self.slot = 0  # row index inside the current batch

    def _is_pair(self, k: int) -> bool:
        return self.pairs and self.streams[k].docs.layout == PAIR_LAYOUT

    def _n_rows(self, k: int, u: int) -> int:
        st = self.streams[k]
        if not is_example_layout(st.docs.layout):
            return max(1, -(-(st.docs.length(st.unit(u)[0]) - 1) // self.seq_len))
        return st.take

    def _row(self, k: int, u: int, j: int) -> dict[str, Any]:
        st = self.streams[k]
        if not is_example_layout(st.docs.layout):
            tokens, loss = st.docs.doc(st.unit(u)[0])
            loss = loss if loss is not None else np.ones(len(tokens), np.uint8)
            a = j * self.seq_len
            tokens, loss = tokens[a : a + self.seq_len + 1], loss[a : a + self.seq_len + 1]
            role, pair_id, ref = ROLE_SFT, -1, 0.0
        else:
            d = st.unit(u)[j]
            tokens, loss = st.docs.doc(d)
            loss = loss if loss is not None else np.ones(len(tokens), np.uint8)
            if self._is_pair(k):
                role = ROLE_CHOSEN if j == 0 else ROLE_REJECTED
                pair = d // 2
                pair_id = (self.source_index[k] << 32) | pair
                ref = float(self.refs[k][j][pair]) if k in self.refs else 0.0
            else:
                role, pair_id, ref = ROLE_SFT, -1, 0.0
        inputs, labels, positions = example_row(np.asarray(tokens), np.asarray(loss), self.seq_len, self.pad_id)
        return {"inputs": inputs, "labels": labels, "positions": positions, "role": role, "pair_id": pair_id, "ref_logps": ref}

    def _pad_row(self) -> dict[str, Any]:
        L = self.seq_len
        return {"inputs": np.full(L, self.pad_id, np.int64), "labels": np.full(L, IGNORE_INDEX, np.int64),
                "positions": np.arange(L, dtype=np.int64), "role": ROLE_PAD, "pair_id": -1, "ref_logps": 0.0}

    def next_row(self) -> dict[str, Any] | None:
        """The next row (numpy arrays + scalars), or None when the data ran out (infinite=False)."""
        last_slot = self.slot == self.batch_rows - 1
        while self.current is None:
            single_only = self.pairs and last_slot
            nxt = self._pick(lambda k: not (single_only and self._is_pair(k)))
            if nxt is not None:
                self.current, self.offset = nxt, 0
                break
            if any(self._left(k) for k in range(len(self.streams))):
                self.slot = 0  # only pairs are left and one slot is free: pad it
                return self._pad_row()
            if not self._new_epoch():
                return None
        k, u = self.current
        row = self._row(k, u, self.offset)
        self.offset += 1
        if self.offset >= self._n_rows(k, u):
            self.current = None
        self.slot = (self.slot + 1) % self.batch_rows
        return row

    def __iter__(self):
        while (row := self.next_row()) is not None:
            yield row

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "slot": self.slot}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.slot = int(state["slot"])
