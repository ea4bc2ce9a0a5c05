"""The held-out slice of a build: documents per source that never reach the training shards.

`datakit mix build` sets aside, per plain-document source, the `heldout_docs` documents (default
`DEFAULT_HELDOUT_DOCS`, [mixture] or per [[source]]; never more than a tenth of a source) whose
sha256(seed, source, doc id) is smallest, before counting, sampling and long-context filling. They are
written as a built mixture of their own (Contract 2, so every reader reads it):

    <output>/heldout/manifest.json        the held-out documents per source, shard sha256s
    <output>/heldout/tokens/<source>/     `<s> text </s>` shards, one per source
    <output>/heldout/accounting.duckdb    one `docs` row per held-out document (doc ids)

and recorded in the training build: a `heldout` table in `<output>/accounting.duckdb` (source, doc_id,
tokens) and a note in its manifest. `titan eval` reports loss per source on it;
`titan quant-report --data <output>/heldout` scores GGUF files on it. SFT/DPO sources (prompt/completion
layouts) hold nothing out: the planning suite of `titan eval` measures those.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datakit.contract import DB_NAME, DocRow, Manifest, Shard, SourceEntry, TokenizerInfo, sha256_file, token_dtype, write_manifest

DEFAULT_HELDOUT_DOCS = 8  # per source: enough for a loss with a confidence interval on small builds, cheap on large ones
MAX_HELDOUT_FRACTION = 0.1  # never hold out more than a tenth of a source's documents
HELDOUT_DIR = "heldout"


def heldout_size(n_docs: int, want: int) -> int:
    """How many of a source's `n_docs` documents are held out when the spec asks for `want`."""
    return max(0, min(int(want), int(n_docs * MAX_HELDOUT_FRACTION)))


def choose_heldout(ids: list[str], k: int, seed: int, source: str) -> np.ndarray:
    """Indices (ascending) of the `k` documents whose sha256(seed, source, id) is smallest: the same ids
    give the same slice whatever the worker count or file order."""
    if k <= 0:
        return np.zeros(0, np.int64)
    keys = [hashlib.sha256(f"{seed}\0{source}\0{i}".encode()).digest() for i in ids]
    return np.sort(np.argsort(np.array(keys, dtype=object), kind="stable")[:k]).astype(np.int64)


@dataclass
class HeldoutDocs:
    """One source's held-out documents, taken out of its pool."""

    source: str
    tokens: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)
    scores: list = field(default_factory=list)


def wanted(spec, source) -> int:
    """The spec's heldout_docs for a source ([[source]] overrides [mixture]; 0 turns it off)."""
    own = getattr(source, "heldout_docs", None)
    return int(own if own is not None else getattr(spec.mixture, "heldout_docs", DEFAULT_HELDOUT_DOCS))


def split_pools(spec, pools: dict) -> dict[str, HeldoutDocs]:
    """Take the held-out documents out of each plain-document source's pool (in place); return them."""
    from datakit.sources.formatters import is_example_format

    out: dict[str, HeldoutDocs] = {}
    for s in spec.source:
        pool = pools.get(s.name)
        if pool is None or is_example_format(s.format) or pool.has_loss:
            continue
        idx = choose_heldout(pool.ids, heldout_size(len(pool.lengths), wanted(spec, s)), spec.mixture.seed, s.name)
        held = HeldoutDocs(s.name)
        for d in idx:
            held.tokens.append(np.array(pool.tokens(int(d))))
            held.ids.append(pool.ids[d])
            held.chars.append(pool.chars[d])
            held.scores.append(pool.scores[d])
        out[s.name] = held
        if len(idx):
            keep = np.ones(len(pool.lengths), bool)
            keep[idx] = False
            _keep(pool, keep)
    return out


class _Subset:
    """The documents of a shard index (datakit.contract.reader.ShardDocs) at `idx`, renumbered 0.."""

    def __init__(self, docs, idx: np.ndarray):
        self.base, self.idx = docs, idx
        self.has_loss = docs.has_loss

    def doc(self, d: int):
        return self.base.doc(int(self.idx[d]))

    def __len__(self) -> int:
        return len(self.idx)


def _keep(pool, keep: np.ndarray) -> None:
    """Restrict a build pool (datakit.mix.write.Pool) to the documents where `keep` is true: the pool reads
    its documents by position (`pool.docs.doc(d)`, `pool.lengths[d]`, `pool.ids[d]`), all renumbered here."""
    idx = np.flatnonzero(keep)
    pool.docs = _Subset(pool.docs, idx)
    pool.lengths = pool.lengths[idx]
    pool.ids = [pool.ids[i] for i in idx]
    pool.chars = [pool.chars[i] for i in idx]
    pool.scores = [pool.scores[i] for i in idx]


def write_heldout(output: Path, name: str, seq_len: int, seed: int, spec_raw: dict, spec_sha256: str, tokenizer: TokenizerInfo,
                  held: dict[str, HeldoutDocs], datakit_version: str) -> Manifest | None:
    """Write `<output>/heldout` (a Contract 2 mixture of the held-out documents) and return its manifest;
    None (and no folder) when nothing is held out."""
    from datakit.accounting.db import write_accounting

    folder = Path(output) / HELDOUT_DIR
    if folder.exists():
        shutil.rmtree(folder)
    if not any(h.ids for h in held.values()):
        return None
    dtype = token_dtype(tokenizer.token_size_bytes)
    entries, rows = [], []
    for src, h in held.items():
        if not h.ids:
            continue
        rel = f"tokens/{src}/{src}-00000.ds"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ends = np.cumsum([len(t) for t in h.tokens]).astype("<u8")
        with open(path, "wb") as f:
            f.write(np.concatenate(h.tokens).astype(dtype).tobytes())
        with open(f"{path}.index", "wb") as f:
            f.write(ends.tobytes())
        n_tokens = int(ends[-1])
        shard = Shard(path=rel, size_bytes=path.stat().st_size, sha256=sha256_file(path), n_tokens=n_tokens, n_docs=len(h.ids),
                      index_sha256=sha256_file(f"{path}.index"))
        entries.append(SourceEntry(name=src, uri=f"heldout://{src}", format="text", docs_available=len(h.ids), tokens_available=n_tokens,
                                   tokens_target=n_tokens, tokens_written=n_tokens, docs_written=len(h.ids), epochs=1.0, weight=0.0,
                                   shards=[shard]))
        rows += [DocRow(src, path.name, len(rows) + i, d, len(t), c, sc, 0, 0, None, None, None, None)
                 for i, (d, t, c, sc) in enumerate(zip(h.ids, h.tokens, h.chars, h.scores))]
    total = sum(e.tokens_written for e in entries)
    for e in entries:
        e.weight = e.tokens_written / total
    # its own spec hash (readers such as `titan quant-report` tell "the mixture the model trained on" by it)
    own_sha = hashlib.sha256(f"heldout:{spec_sha256}".encode()).hexdigest()
    manifest = Manifest(name=f"{name}-heldout", seq_len=seq_len, seed=seed, spec=spec_raw, spec_sha256=own_sha, tokenizer=tokenizer,
                        sources=entries, total_tokens=total, total_docs=sum(e.docs_written for e in entries), datakit_version=datakit_version,
                        notes=[f"held-out documents of mixture {name!r} (spec sha256 {spec_sha256}): never in its training shards "
                               "(datakit.mix.heldout); another mixture reading the same sources may contain them"])
    write_accounting(folder, manifest, rows)
    write_manifest(folder, manifest)
    return manifest


def record_in_accounting(output: Path, held: dict[str, HeldoutDocs]) -> None:
    """A `heldout(source, doc_id, tokens)` table in the training build's accounting.duckdb."""
    import duckdb
    import pyarrow as pa

    table = pa.table({"source": pa.array([h.source for h in held.values() for _ in h.ids], pa.string()),
                      "doc_id": pa.array([d for h in held.values() for d in h.ids], pa.string()),
                      "tokens": pa.array([len(t) for h in held.values() for t in h.tokens], pa.int64())})
    con = duckdb.connect(str(Path(output) / DB_NAME))
    try:
        con.register("heldout_arrow", table)
        con.execute("create or replace table heldout as select * from heldout_arrow")
        con.execute("checkpoint")
    finally:
        con.close()


def heldout_note(held: dict[str, HeldoutDocs]) -> str:
    per = ", ".join(f"{h.source} {len(h.ids)}" for h in held.values() if h.ids) or "none"
    n = sum(len(h.ids) for h in held.values())
    return (f"held out: {n} documents never in the training shards ({per}); in {HELDOUT_DIR}/ (a built mixture) and the "
            "accounting's `heldout` table; `titan eval` reports loss per source on them")
