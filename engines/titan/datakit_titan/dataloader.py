"""The TorchTitan dataloader component over a built mixture (Contract 2).

`MixtureDataLoader.Config(mixture=...)` goes in `Trainer.Config.dataloader`; TorchTitan builds it
with the rank's data-parallel place, seq_len and local batch size, and checkpoints its state
(the `MixtureDataset` cursor) with every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchtitan.components.dataloader import ParallelAwareDataloader

from datakit_titan.dataset import MixtureDataset


class MixtureDataLoader(ParallelAwareDataloader):
    @dataclass(kw_only=True, slots=True)
    class Config(ParallelAwareDataloader.Config):
        mixture: str = ""
        """Built mixture folder (Contract 2), e.g. data/mixtures/pretrain."""

        verify_sha256: bool = True
        """Check every shard's sha256 against the manifest before reading."""

        infinite: bool = True
        """Start a new epoch over the mixture when it is read to the end."""

        document_masking: bool = True
        """Positions restart at every document (attention stays inside documents); False: one causal row."""

    def __init__(
        self,
        config: Config,
        *,
        dp_world_size: int,
        dp_rank: int,
        seq_len: int,
        local_batch_size: int,
        snapshot_every_n_steps: int | None = 1,
        **kwargs,
    ):
        dataset = MixtureDataset(
            config.mixture,
            seq_len=seq_len,
            dp_rank=dp_rank,
            dp_world_size=dp_world_size,
            infinite=config.infinite,
            verify=config.verify_sha256,
            document_masking=config.document_masking,
        )
        super().__init__(
            dataset,
            dp_rank=dp_rank,
            dp_world_size=dp_world_size,
            num_workers=config.num_workers,
            persistent_workers=config.persistent_workers,
            pin_memory=config.pin_memory,
            prefetch_factor=config.prefetch_factor,
            snapshot_every_n_steps=snapshot_every_n_steps,
            batch_size=local_batch_size,
        )
