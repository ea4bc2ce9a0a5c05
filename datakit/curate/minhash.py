"""MinHash near-deduplication across all sources on datatrove's four MinHash stages.

Shingles are `ngram`-word n-grams of datatrove's normalized text (lowercase, no punctuation,
numbers folded); a signature has num_buckets x hashes_per_bucket min-hashes (64-bit, sha1-based
hashing, permutations from `seed`). Two documents are duplicates when all hashes of any one bucket
agree: P(caught | Jaccard s) = 1 - (1 - s^r)^b. Duplicate pairs are clustered (union-find); of each
cluster one document is kept, the others are removed with detail = the kept document's id.

Stages (datatrove): MinhashDedupSignature (per task) -> MinhashDedupBuckets (one task per bucket)
-> MinhashDedupCluster (1 task) -> MinhashDedupFilter (per task, same task split as stage 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.utils.hashing import HashConfig

from datakit.curate.doc_ids import read_ids
from datakit.curate.spec import MinhashSpec

# datatrove's default xxhash hashing rejects str input with xxhash >= 4; sha1 works with any version
STR_HASH = HashConfig(precision=64, hash_fc="sha1")


def minhash_config(spec: MinhashSpec) -> MinhashConfig:
    b, r = spec.banding()
    return MinhashConfig(n_grams=spec.ngram, num_buckets=b, hashes_per_bucket=r, seed=spec.seed, hash_config=STR_HASH)


def write_duplicate_of(cluster_dir: Path, ids_dir: Path, tasks: int, out_path: Path) -> int:
    """Map each removed document id to the id of the document kept from its cluster (from
    MinhashDedupCluster's `.remove` and `.clusters` files); returns the number removed."""
    members: dict[int, list[tuple[int, int]]] = {}  # cluster id -> [(task, position)]
    removed: set[tuple[int, int]] = set()
    for rank in range(tasks):
        rf = Path(cluster_dir) / f"{rank:06d}.remove"
        cf = Path(cluster_dir) / f"{rank:06d}.clusters"
        if rf.exists():
            removed.update((rank, int(d)) for d in np.fromfile(rf, dtype="<u4"))
        if cf.exists():
            for d, c in np.fromfile(cf, dtype="<u4").reshape(-1, 2).tolist():
                members.setdefault(c, []).append((rank, d))
    ids_cache: dict[int, list[str]] = {}

    def id_of(rank: int, pos: int) -> str:
        if rank not in ids_cache:
            ids_cache[rank] = read_ids(ids_dir, rank)
        return ids_cache[rank][pos]

    dup_of: dict[str, str] = {}
    for nodes in members.values():
        kept = [n for n in nodes if n not in removed]
        kept_id = id_of(*kept[0]) if kept else None
        for n in nodes:
            if n in removed:
                dup_of[id_of(*n)] = kept_id
    tmp = Path(str(out_path) + ".tmp")
    tmp.write_text(json.dumps(dup_of))
    tmp.replace(out_path)
    return len(dup_of)
