"""The TorchTitan dataloader component over phase-3 rows (`PairDataset`).

`PairDataLoader.Config(mixture=..., loss=...)` goes in `Trainer.Config.dataloader`; TorchTitan builds
it with the rank's data-parallel place, seq_len and local batch size (the rows per micro-batch, which
`PairDataset` needs to keep pairs whole), and checkpoints its cursor with every checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from torchtitan.components.dataloader import ParallelAwareDataloader

from datakit_titan.dataset import PairDataset


class PairDataLoader(ParallelAwareDataloader):
    @dataclass(kw_only=True, slots=True)
    class Config(ParallelAwareDataloader.Config):
        mixture: str = ""
        """Built mixture folder (Contract 2) with sft / dpo sources."""

        loss: str = "sft_dpo"
        """sft_dpo | sft | dpo | orpo: which rows are needed (and whether reference log-probs are)."""

        reference: str = ""
        """JSON of `refscore.expected_reference(...)`: the checkpoint and RoPE the reference must match."""

        phase_file: str = ""
        """The phase file (named in error messages)."""

        verify_sha256: bool = True
        """Check every shard's sha256 against the manifest before reading."""

        infinite: bool = True
        """Start a new epoch when the mixture is read to the end."""

    def __init__(self, config: Config, *, dp_world_size: int, dp_rank: int, seq_len: int, local_batch_size: int,
                 snapshot_every_n_steps: int | None = 1, **kwargs):
        dataset = PairDataset(
            config.mixture, seq_len=seq_len, batch_rows=local_batch_size, dp_rank=dp_rank, dp_world_size=dp_world_size,
            loss=config.loss, reference=json.loads(config.reference) if config.reference else None,
            infinite=config.infinite, verify=config.verify_sha256, phase_file=config.phase_file or None,
        )
        super().__init__(
            dataset, dp_rank=dp_rank, dp_world_size=dp_world_size, num_workers=config.num_workers,
            persistent_workers=config.persistent_workers, pin_memory=config.pin_memory, prefetch_factor=config.prefetch_factor,
            snapshot_every_n_steps=snapshot_every_n_steps, batch_size=local_batch_size,
        )
