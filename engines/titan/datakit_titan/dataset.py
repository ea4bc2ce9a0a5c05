"""Contract 2 -> TorchTitan batches: the engine's one data module.

Both datasets are the contract's cursors (datakit.contract.cursors) behind datakit's torch adapter
(datakit.adapters.torch), in TorchTitan's item format `({"input", "positions", ...}, labels)`:

    MixtureDataset  packed rows of seq_len for pretraining / mid-training (`PackedCursor`): documents
                    back to back, (input, label) pairs never across a document boundary, positions
                    restarting at every document, IGNORE_INDEX where a `.ds.loss` mask is 0
    PairDataset     phase-3 rows (`ExampleCursor`): one SFT / DPO example per row, right-padded, with
                    role, pair_id and the reference log-prob; pairs never split by a batch boundary

What one data-parallel rank reads, in what order, and the state that makes resume exact are the
cursors' (a few integers): see datakit.contract.cursors.
"""

from __future__ import annotations

import os
from pathlib import Path

from datakit.adapters.losses import NEEDS_PAIRS, NEEDS_REFERENCE
from datakit.adapters.torch import ExampleDataset, PackedDataset
from datakit.contract import Manifest, open_mixture
from datakit.contract.layouts import IGNORE_INDEX, PAIR_LAYOUT
from datakit.contract.reader import Mixture
from datakit.errors import UserError

__all__ = ["IGNORE_INDEX", "MixtureDataset", "PairDataset", "open_mixture"]


class MixtureDataset(PackedDataset):
    """Packed (input, label, positions) rows of `seq_len` from a built mixture, for one DP rank.

    folder: the built mixture (Contract 2). seq_len: tokens per row. dp_rank / dp_world_size: this
    rank's place among data-parallel ranks. infinite: start a new epoch when every source is read
    (False: stop). verify: check shard sha256 before reading (skip only when already checked).
    document_masking: positions restart at every document start (TorchTitan's attention masks keep
    attention inside documents); False: positions 0..seq_len-1 per row, plain causal attention across
    the packed documents (labels still never cross a document end).
    """

    def __init__(self, folder: str | os.PathLike, *, seq_len: int, dp_rank: int = 0, dp_world_size: int = 1, infinite: bool = True,
                 verify: bool = True, manifest: Manifest | None = None, document_masking: bool = True):
        super().__init__(folder, seq_len=seq_len, infinite=infinite, rank=dp_rank, world_size=dp_world_size, verify=verify,
                         manifest=manifest, style="titan", document_masking=document_masking)


class PairDataset(ExampleDataset):
    """Fixed-length example rows for SFT + DPO training, for one data-parallel rank.

    folder: the built mixture. seq_len: tokens per row (an example longer than seq_len + 1 tokens is an
    error). batch_rows: rows per micro-batch (the local batch size): pairs never straddle a batch.
    loss: "sft_dpo" | "sft" | "dpo" | "orpo" (which rows are needed; "sft" trains on the chosen half of
    pairs only). reference: the checkpoint the reference log-probs must come from, as
    `datakit_titan.prefs.refscore.expected_reference(...)` returns; None checks the data and
    tokenizer hashes only. infinite: start a new epoch at the end (False: stop).
    """

    def __init__(self, folder: str | os.PathLike, *, seq_len: int, batch_rows: int, dp_rank: int = 0, dp_world_size: int = 1,
                 loss: str = "sft_dpo", reference: dict | None = None, infinite: bool = True, verify: bool = True,
                 manifest: Manifest | None = None, phase_file: str | None = None):
        folder = Path(folder)
        mixture = Mixture(folder, manifest) if manifest is not None else open_mixture(folder, verify=verify)
        where = phase_file or str(folder / "manifest.json")
        pairs = loss in NEEDS_PAIRS
        usable = [s for s in mixture.sources if s.n_docs and (loss != "dpo" or s.layout == PAIR_LAYOUT)]
        if pairs and not any(s.layout == PAIR_LAYOUT for s in usable) or not usable:
            raise UserError(f"loss {loss!r} needs DPO pairs but the mixture has no `dpo` source", file=where, field="phase.loss",
                            fix="add a source with format = \"dpo\" to the mixture, or use loss = \"sft\"")
        if pairs and batch_rows < 2:
            raise UserError(f"batch.per_gpu = {batch_rows} cannot hold a chosen + rejected pair", file=where, field="batch.per_gpu", fix="use at least 2")
        self.loss = loss
        try:
            super().__init__(mixture, seq_len=seq_len, batch_rows=batch_rows, pairs=pairs, pairs_only=loss == "dpo", infinite=infinite,
                             where=where, rank=dp_rank, world_size=dp_world_size, style="titan")
        except UserError as e:
            if e.field == "seq_len":
                e.field = "stage.seq_len"  # the phase file's name for it
            raise
        if loss in NEEDS_REFERENCE:  # the data is sound: now the reference log-probs of every pair
            from datakit_titan.prefs.refscore import load_refscores

            self.refs = {s.name: load_refscores(folder, mixture.manifest, s.name, reference=reference, phase_file=phase_file)
                         for s in usable if s.layout == PAIR_LAYOUT}
            self._reader = None  # rebuild the cursor with them
            self._ensure_cursor()
