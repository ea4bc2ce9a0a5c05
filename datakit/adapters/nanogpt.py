"""nanoGPT's `get_batch(split)` over built mixtures: drop-in for the `.bin` memmaps of nanoGPT's train.py.

    from datakit.adapters.nanogpt import Batches
    batches = Batches("data/mixtures/pretrain", val="data/mixtures/heldout", batch_size=12, block_size=1024, device=device)
    get_batch = batches.get_batch            # x, y = get_batch("train"): LongTensors [batch_size, block_size]
    checkpoint["data"] = batches.state_dict()   # resume: batches.load_state_dict(checkpoint["data"])

Unlike nanoGPT's random offsets, batches come from the contract's packed cursor (datakit.contract.cursors):
deterministic, every document once per epoch in the manifest's proportions, sharded by rank (DDP), and
resumable exactly. y holds -1 (nanoGPT's ignore_index) where no loss applies: never across a document
boundary, and off the completion of SFT examples. Without `val`, "val" reads the train mixture with its
own cursor (give a held-out mixture for a real validation split).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from datakit.contract.cursors import PackedCursor
from datakit.contract.layouts import IGNORE_INDEX
from datakit.contract.reader import open_mixture


class Batches:
    def __init__(self, train: str | os.PathLike, val: str | os.PathLike | None = None, *, batch_size: int, block_size: int,
                 device: str = "cpu", rank: int = 0, world_size: int = 1, verify: bool = True, ignore_index: int = -1):
        self.batch_size, self.device, self.ignore_index = batch_size, device, ignore_index
        mixes = {"train": open_mixture(train, verify=verify)}
        mixes["val"] = open_mixture(val, verify=verify) if val is not None else mixes["train"]
        self.cursors = {k: PackedCursor(m, block_size, rank=rank, world_size=world_size) for k, m in mixes.items()}

    def get_batch(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        windows = [self.cursors[split].next_window() for _ in range(self.batch_size)]
        x = torch.from_numpy(np.stack([w.inputs for w in windows]))
        y = torch.from_numpy(np.stack([w.labels for w in windows]))
        y[y == IGNORE_INDEX] = self.ignore_index
        if str(self.device).startswith("cuda"):
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def state_dict(self) -> dict:
        return {k: c.state_dict() for k, c in self.cursors.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, c in self.cursors.items():
            c.load_state_dict(state[k])
