"""Deterministic sampling of a source's documents to its token target, with repetition for epochs > 1.

Epoch e (0-based) writes a seeded permutation of all documents; the last, partial epoch takes a seeded
permutation's prefix until the target is reached (whole documents, so it may overshoot by < one document).
"""

from __future__ import annotations

import hashlib

import numpy as np


def source_rng(seed: int, source: str, epoch: int) -> np.random.Generator:
    salt = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, salt, epoch])


def choose_documents(lengths: np.ndarray, target_tokens: int, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (doc indices, epoch of each) in write order for `target_tokens` tokens from docs of `lengths`."""
    available = int(lengths.sum())
    if available == 0 or target_tokens <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    n_full, remainder = divmod(int(target_tokens), available)
    order, epochs = [], []
    for e in range(n_full):
        order.append(source_rng(seed, source, e).permutation(len(lengths)))
        epochs.append(np.full(len(lengths), e, np.int32))
    if remainder:
        perm = source_rng(seed, source, n_full).permutation(len(lengths))
        cum = np.cumsum(lengths[perm])
        k = int(np.searchsorted(cum, remainder, side="left")) + 1  # first prefix reaching the remainder
        order.append(perm[:k])
        epochs.append(np.full(k, n_full, np.int32))
    return np.concatenate(order), np.concatenate(epochs)
