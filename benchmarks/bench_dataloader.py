"""Tokens per second the engine's dataloader delivers on CPU (goal: >= 1M tokens/s per rank).

Writes a synthetic built mixture (Contract 2: three sources, documents of 20-2,000 tokens) into a
temporary folder, then times packing rows of seq_len 2048 (a) straight from MixtureDataset and
(b) through TorchTitan's loader (torchdata StatefulDataLoader, batch 2, as in training), for
rank 0 of 1 and rank 3 of 8. Prints the figures.

    python benchmarks/bench_dataloader.py [--tokens 30_000_000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from datakit.accounting.db import write_accounting_from_shards
from datakit.contract import Manifest, Shard, SourceEntry, TokenizerInfo, sha256_file, write_manifest


def write_mixture(folder: Path, n_tokens: int, seed: int = 0) -> Manifest:
    rng = np.random.default_rng(seed)
    entries = []
    for name, share in (("web", 0.6), ("math", 0.3), ("code", 0.1)):
        lengths = rng.integers(20, 2000, size=int(n_tokens * share / 1010) + 1)
        ends = np.cumsum(lengths).astype("<u8")
        tokens = rng.integers(3, 65_536, size=int(ends[-1]), dtype=np.uint16)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        tokens[starts] = 1
        tokens[ends.astype(np.int64) - 1] = 2
        path = folder / "tokens" / name / "00000.ds"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens.astype("<u2").tofile(path)
        ends.tofile(str(path) + ".index")
        shard = Shard(
            path=str(path.relative_to(folder)), size_bytes=path.stat().st_size, sha256=sha256_file(path), n_tokens=len(tokens),
            n_docs=len(lengths), index_sha256=sha256_file(str(path) + ".index"),
        )
        entries.append(
            SourceEntry(
                name=name, uri=f"file://{name}", format="text", docs_available=len(lengths), tokens_available=len(tokens),
                tokens_target=len(tokens), tokens_written=len(tokens), docs_written=len(lengths), epochs=1.0, weight=0.0, shards=[shard],
            )
        )
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total
    m = Manifest(
        name="bench", seq_len=2048, seed=seed, spec={}, spec_sha256="0" * 64,
        tokenizer=TokenizerInfo(path="tokenizer.json", sha256="0" * 64, vocab_size=65_536), sources=entries,
        total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version="bench",
    )
    write_accounting_from_shards(folder, m)
    write_manifest(folder, m)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=lambda s: int(s.replace("_", "")), default=30_000_000)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--rows", type=int, default=4000, help="rows to time per case")
    args = ap.parse_args()

    from torchdata.stateful_dataloader import StatefulDataLoader

    from datakit_titan.dataset import MixtureDataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mix"
        t0 = time.perf_counter()
        m = write_mixture(folder, args.tokens)
        print(f"mixture: {m.total_tokens:,} tokens, {m.total_docs:,} documents, 3 sources (written in {time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        MixtureDataset(folder, seq_len=args.seq_len, verify=True)
        print(f"open + sha256 verify: {time.perf_counter() - t0:.2f} s ({m.total_tokens * 2 / 1e6:,.0f} MB)")
        for rank, world in ((0, 1), (3, 8)):
            ds = MixtureDataset(folder, seq_len=args.seq_len, dp_rank=rank, dp_world_size=world, verify=False)
            ds.next_row()  # warm the page cache / memmaps
            t0 = time.perf_counter()
            for _ in range(args.rows):
                ds.next_row()
            dt = time.perf_counter() - t0
            print(f"rank {rank} of {world}: MixtureDataset rows        {args.rows * args.seq_len / dt:>13,.0f} tokens/s")

            loader = StatefulDataLoader(MixtureDataset(folder, seq_len=args.seq_len, dp_rank=rank, dp_world_size=world, verify=False), batch_size=2)
            it = iter(loader)
            next(it)
            n_batches = args.rows // 2
            t0 = time.perf_counter()
            for _ in range(n_batches):
                next(it)
            dt = time.perf_counter() - t0
            print(f"rank {rank} of {world}: StatefulDataLoader batch 2 {n_batches * 2 * args.seq_len / dt:>13,.0f} tokens/s")


if __name__ == "__main__":
    main()
