"""Near-duplicate problems by MinHash over word 3-grams (datasketch), with a fixed seed: deterministic."""

from __future__ import annotations

import re

from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SEED = 1


def _shingles(text: str, n: int = 3) -> set[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def minhash(text: str) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, seed=SEED)
    m.update_batch(list(_shingles(text)))
    return m


class NearDupIndex:
    """Problems seen so far; `add` says whether a new one is a near duplicate of any of them.

    threshold: estimated Jaccard similarity of word 3-gram sets above which two problems are near duplicates.
    """

    def __init__(self, threshold: float = 0.7):
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._hashes: dict[str, MinHash] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def find(self, text: str) -> str | None:
        """The key of a near-duplicate already indexed, or None."""
        m = minhash(text)
        for key in sorted(self._lsh.query(m)):
            if self._hashes[key].jaccard(m) >= self.threshold:
                return key
        return None

    def add(self, key: str, text: str) -> str | None:
        """Index `text` under `key` unless it is a near duplicate; returns the duplicate's key or None."""
        dup = self.find(text)
        if dup is None and key not in self._hashes:
            m = minhash(text)
            self._lsh.insert(key, m)
            self._hashes[key] = m
        return dup
